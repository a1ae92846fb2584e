package server

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mizuchi/uploadr/cors"
	"github.com/mizuchi/uploadr/policy"
)

// Config is the whole configuration file. Every key is documented in README.md ("Configuration").
// Zero values take the defaults listed there.
type Config struct {
	Server   ServerConfig   `yaml:"server"`
	Upstream UpstreamConfig `yaml:"upstream"`
	Metrics  MetricsConfig  `yaml:"metrics"`
	Log      LogConfig      `yaml:"log"`
	Tracing  TracingConfig  `yaml:"tracing"` // OpenTelemetry (tracing.go); default off
	Buckets  []BucketConfig `yaml:"buckets"`
}

// ServerConfig tunes the listener and the data plane.
type ServerConfig struct {
	Address          string         `yaml:"address"`            // listen address; default 0.0.0.0:8080
	PlainListener    *bool          `yaml:"plain_listener"`     // default true; false = https only (server.tls)
	EventLoops       int            `yaml:"event_loops"`        // 0 = GOMAXPROCS (one per CPU the process may use)
	ZeroCopy         ZeroCopyConfig `yaml:"zero_copy"`          // splice settings
	MaxHeadBytes     ByteSize       `yaml:"max_head_bytes"`     // default 64KiB
	MaxURIBytes      ByteSize       `yaml:"max_uri_bytes"`      // default 16KiB
	HeadTimeout      Duration       `yaml:"head_timeout"`       // default 30s
	IdleTimeout      Duration       `yaml:"idle_timeout"`       // default 60s
	BodyStallTimeout Duration       `yaml:"body_stall_timeout"` // default 60s
	ResponseTimeout  Duration       `yaml:"response_timeout"`   // default 5m
	InlineBodyMax    ByteSize       `yaml:"inline_body_max"`    // default 1MiB
	MaxObjectSize    ByteSize       `yaml:"max_object_size"`    // default 5TiB
	DrainTimeout     Duration       `yaml:"drain_timeout"`      // default 30s
	// ReusePort: the listeners (plain, https, admin) set SO_REUSEPORT, so that a new process
	// started with it joins the addresses of a running one that was started with it too: the
	// zero-downtime upgrade (README "Upgrading without downtime"). Default false: a second
	// process on a live address fails with "address already in use".
	ReusePort bool `yaml:"reuse_port"`
	// Complete documents buffered at once, all connections; default 32MiB, at least 4MiB
	CompleteBodyBudget ByteSize `yaml:"complete_body_budget"`
	// Buffers of the copy path (https upstreams or clients, aws-chunked bodies, zero copy off),
	// 256KiB each and one per transfer, lent at once over all transfers; default 64MiB, at least
	// 256KiB. A transfer that finds them all busy waits (within body_stall_timeout).
	CopyMemoryMax ByteSize `yaml:"copy_memory_max"`
	// DNS suffixes of virtual-hosted-style requests: Host <bucket>.<suffix>[:port] addresses
	// bucket <bucket> (the key is the whole path). Default none: path style only.
	VirtualHostSuffixes []string `yaml:"virtual_host_suffixes"`
	// Keys of the upload ids handed to clients (each binds its upstream upload id to the
	// principal, bucket and key): the first signs, all verify; each at least 16 bytes, empty
	// entries after the first ignored. Default none: a key derived from each bucket's upstream
	// secret key.
	UploadIDSecrets []string `yaml:"upload_id_secrets"`
	// TLS: an https listener for clients beside the plain one (tls.go).
	TLS TLSConfig `yaml:"tls"`
	// Limits: client connections and request rates (README "Client limits"); default none.
	Limits LimitsConfig `yaml:"limits"`
	// ProxyProtocol: PROXY protocol v1/v2 headers from trusted balancers (proxyproto.go).
	ProxyProtocol ProxyProtocolConfig `yaml:"proxy_protocol"`
}

// LimitsConfig bounds what clients may take; 0 = unlimited. Over a limit a client gets 503
// SlowDown (SDKs retry it with back-off), counted in mizuchi_limited_total{limit}.
type LimitsConfig struct {
	MaxConnections         int     `yaml:"max_connections"`            // client connections held at once, both listeners
	MaxConnectionsPerIP    int     `yaml:"max_connections_per_ip"`     // ... from one source address
	RequestsPerSecondPerIP float64 `yaml:"requests_per_second_per_ip"` // sustained rate per source address
	BurstPerIP             int     `yaml:"burst_per_ip"`               // requests at once; default the rate rounded up
	// Sustained rate per authenticated principal (access key id, JWT subject).
	RequestsPerSecondPerPrincipal float64 `yaml:"requests_per_second_per_principal"`
	BurstPerPrincipal             int     `yaml:"burst_per_principal"` // default the rate rounded up
}

// ZeroCopyConfig configures the splice path.
type ZeroCopyConfig struct {
	Enabled        *bool    `yaml:"enabled"`          // default true; false = always the copy path
	PipeBufferSize ByteSize `yaml:"pipe_buffer_size"` // default 1MiB
	MinPipeSize    ByteSize `yaml:"min_pipe_size"`    // default 256KiB
	PipePoolSize   int      `yaml:"pipe_pool_size"`   // idle pipes kept; default 64
	// ReadBatch: bytes a large body gathers in the client's socket before the proxy reads it
	// (SO_RCVLOWAT): spliced bodies above two pipes, and TLS clients' bodies (capped at their
	// 128 KiB read-ahead); default 256KiB, 1 = wake for every segment.
	ReadBatch ByteSize `yaml:"read_batch"`
}

// UpstreamConfig tunes the upstream connection pools (one per endpoint).
type UpstreamConfig struct {
	DialTimeout Duration `yaml:"dial_timeout"` // default 5s
	MaxIdle     int      `yaml:"max_idle"`     // default 64
	MaxConns    int      `yaml:"max_conns"`    // connections per endpoint; 0 = unlimited
	IdleTimeout Duration `yaml:"idle_timeout"` // default 30s
	// AbortRetryFor: how long a failed abort of an auto-chunked upload is retried; default 10m.
	AbortRetryFor Duration `yaml:"abort_retry_for"`
}

// MetricsConfig configures the admin listener.
type MetricsConfig struct {
	Enabled *bool  `yaml:"enabled"` // default true
	Address string `yaml:"address"` // default 127.0.0.1:9090
	// PProf serves Go's profiler at /debug/pprof/ on the admin listener; default false.
	PProf bool `yaml:"pprof"`
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
	Access *bool  `yaml:"access"` // one access-log line per request on stdout; default true
}

// BucketConfig is one client-facing bucket. The bucket named "*" serves every bucket name no
// other entry has, as the same-named upstream bucket (its s3.bucket omitted or "*").
type BucketConfig struct {
	Name       string       `yaml:"name"`
	PathPrefix string       `yaml:"path_prefix"` // default "/<name>"
	S3         S3Config     `yaml:"s3"`
	Auth       AuthConfig   `yaml:"auth"`
	Upload     UploadConfig `yaml:"upload"`
	Policy     PolicyConfig `yaml:"policy"` // upload rules checked on the head; default none
	Authz      AuthzConfig  `yaml:"authz"`  // a remote policy decides on every request (authz.go)
	// CORS: the rules in S3's shape that let browsers on other origins upload (README "Browser
	// uploads"); default none (preflights get 403).
	CORS []CORSRuleConfig `yaml:"cors"`
}

// CORSRuleConfig is one CORS rule, S3's CORSRule in YAML; the first rule that matches applies.
type CORSRuleConfig struct {
	AllowedOrigins []string `yaml:"allowed_origins"` // "https://app.example.com", "https://*.example.com" (one '*'), "*"
	AllowedMethods []string `yaml:"allowed_methods"` // PUT, POST, DELETE, GET, HEAD (upper case, as S3 takes them)
	AllowedHeaders []string `yaml:"allowed_headers"` // request headers a preflight may ask for; one '*' each; ["*"] = any
	ExposeHeaders  []string `yaml:"expose_headers"`  // answer headers scripts may read: ETag for multipart
	MaxAgeSeconds  int      `yaml:"max_age_seconds"` // how long browsers cache a preflight's answer; 0 = not sent
}

// compileCORS turns the rules into the engine's form; nil for none. Problems name the rule's key
// ("cors[1].allowed_methods ...") so that -check places them.
func compileCORS(rules []CORSRuleConfig) (*cors.Config, []error) {
	if len(rules) == 0 {
		return nil, nil
	}
	var errs []error
	if len(rules) > cors.MaxRules {
		errs = append(errs, fmt.Errorf("cors: %d rules; S3 allows at most %d", len(rules), cors.MaxRules))
	}
	rs := make([]cors.Rule, len(rules))
	for i, r := range rules {
		rs[i] = cors.Rule{AllowedOrigins: r.AllowedOrigins, AllowedMethods: r.AllowedMethods,
			AllowedHeaders: r.AllowedHeaders, ExposeHeaders: r.ExposeHeaders, MaxAgeSeconds: r.MaxAgeSeconds}
		for _, err := range rs[i].Problems() {
			if k, _, _ := strings.Cut(err.Error(), " "); strings.Contains(k, "_") {
				errs = append(errs, fmt.Errorf("cors[%d].%w", i, err)) // names its key: allowed_methods "PATCH": …
			} else {
				errs = append(errs, fmt.Errorf("cors[%d]: %w", i, err))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	c, err := cors.New(rs)
	if err != nil {
		return nil, []error{fmt.Errorf("cors: %w", err)}
	}
	return c, nil
}

// S3Config is the upstream of a bucket.
type S3Config struct {
	Bucket    string `yaml:"bucket"`
	Region    string `yaml:"region"` // default us-east-1
	Endpoint  string `yaml:"endpoint"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
	CAFile    string `yaml:"ca_file"` // PEM bundle for an https endpoint; default: system roots
}

// AuthConfig is either the scalar "none" or a mapping with sigv4 credentials and/or a jwt block.
type AuthConfig struct {
	None  bool
	SigV4 SigV4Config `yaml:"sigv4"`
	JWT   *JWTConfig  `yaml:"jwt"` // bearer tokens, beside or instead of sigv4 (jwt.go)
}

// SigV4Config lists client credentials and the regions their signatures may name.
type SigV4Config struct {
	Credentials []Credential `yaml:"credentials"`
	Regions     []string     `yaml:"regions"` // credential scope regions accepted; default [s3.region]
}

// Credential is one client access key and its secret.
type Credential struct {
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key"`
}

// UploadConfig configures multipart behaviour (used by auto-chunking).
type UploadConfig struct {
	MultipartThreshold ByteSize `yaml:"multipart_threshold"` // default 50MiB
	PartSize           ByteSize `yaml:"part_size"`           // default 100MiB
	ConcurrentParts    int      `yaml:"concurrent_parts"`    // default 4
	AutoChunk          *bool    `yaml:"auto_chunk"`          // default true; false: PutObjects go up whole (<= 5 GiB)
}

// PolicyConfig is a bucket's upload rules (README "Policy"): one rule set written as a mapping,
// or a list of rule sets, each with an optional when, of which the first that matches applies.
type PolicyConfig []PolicyRuleConfig

// PolicyRuleConfig is one rule set. Zero values disable a rule.
type PolicyRuleConfig struct {
	When                  PolicyWhen `yaml:"when"`                    // default: every principal
	MaxObjectSize         ByteSize   `yaml:"max_object_size"`         // PutObject's object, each UploadPart's part
	AllowedContentTypes   []string   `yaml:"allowed_content_types"`   // "image/*", "application/pdf", "*/*"
	KeyTemplate           string     `yaml:"key_template"`            // "users/{principal}/*", {jwt.sub}, {jwt.<claim>}
	NoOverwrite           bool       `yaml:"no_overwrite"`            // If-None-Match: * upstream on PutObject and Complete
	RequireChecksum       []string   `yaml:"require_checksum"`        // crc32, crc32c, crc64nvme, sha1, sha256, md5: one must come
	AllowedStorageClasses []string   `yaml:"allowed_storage_classes"` // x-amz-storage-class; none sent = STANDARD
	MaxParts              int        `yaml:"max_parts"`               // highest UploadPart partNumber; 0 = 10000
}

// PolicyWhen selects the principals a rule set applies to; every condition given must hold.
type PolicyWhen struct {
	Principal string            `yaml:"principal"` // SigV4 access key id or JWT subject, exact
	Claim     map[string]string `yaml:"claim"`     // claim name -> value (or a list claim holding it)
}

// UnmarshalYAML accepts one rule set (a mapping) or a list of them.
func (p *PolicyConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var r PolicyRuleConfig
		if err := n.Decode(&r); err != nil {
			return err
		}
		*p = PolicyConfig{r}
		return nil
	}
	var rs []PolicyRuleConfig
	if err := n.Decode(&rs); err != nil {
		return err
	}
	*p = rs
	return nil
}

// compile turns the rule sets into the engine's policy; nil when there are none.
func (p PolicyConfig) compile() (*policy.Policy, error) {
	if len(p) == 0 {
		return nil, nil
	}
	sets := make([]policy.RuleSet, len(p))
	for i, r := range p {
		sets[i] = policy.RuleSet{
			When:                  policy.When{Principal: r.When.Principal, Claims: r.When.Claim},
			MaxObjectSize:         int64(r.MaxObjectSize),
			AllowedContentTypes:   r.AllowedContentTypes,
			KeyTemplate:           r.KeyTemplate,
			NoOverwrite:           r.NoOverwrite,
			RequireChecksum:       r.RequireChecksum,
			AllowedStorageClasses: r.AllowedStorageClasses,
			MaxParts:              r.MaxParts,
		}
	}
	return policy.Compile(sets)
}

// UnmarshalYAML accepts `auth: none` or `auth: {sigv4: {...}, jwt: {...}}`.
func (a *AuthConfig) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value == "none" {
			a.None = true
			return nil
		}
		return typeErr("line %d: auth must be \"none\" or a mapping with sigv4", n.Line)
	}
	type plain struct {
		SigV4 SigV4Config `yaml:"sigv4"`
		JWT   *JWTConfig  `yaml:"jwt"`
	}
	var p plain
	if err := n.Decode(&p); err != nil {
		return err
	}
	a.SigV4, a.JWT = p.SigV4, p.JWT
	return nil
}

// ByteSize is a size in bytes; YAML accepts an integer or a string with a unit (see ParseByteSize).
type ByteSize int64

// sizeUnits is what ParseByteSize accepts, for messages.
const sizeUnits = "bytes or a number with k, m, g, KiB, MiB, GiB, TiB (binary) or KB, MB, GB, TB (decimal)"

// UnmarshalYAML parses a size.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseByteSize(n.Value)
	if err != nil || n.Kind != yaml.ScalarNode {
		return typeErr("line %d: invalid size %q (want %s)", n.Line, n.Value, sizeUnits)
	}
	*b = ByteSize(v)
	return nil
}

// ParseByteSize parses "1048576", "1MiB", "64 KiB", "64k", "5GB". Binary units: KiB, MiB, GiB,
// TiB and nginx's k, m, g (either case: 64k = 65536); decimal units: KB, MB, GB, TB (64KB = 64000).
func ParseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
		{"k", 1 << 10}, {"K", 1 << 10}, {"m", 1 << 20}, {"M", 1 << 20}, {"g", 1 << 30}, {"G", 1 << 30}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			mult = u.mult
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 || (mult > 1 && n > (1<<62)/mult) {
		return 0, fmt.Errorf("invalid size %q (want %s)", s, sizeUnits)
	}
	return n * mult, nil
}

// Duration is a time.Duration written as "30s", "5m", "250ms".
type Duration time.Duration

// String formats d like time.Duration ("30s").
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses a duration.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil || v < 0 || n.Kind != yaml.ScalarNode {
		return typeErr("line %d: invalid duration %q (want e.g. 30s, 5m, 250ms)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// LoadConfig reads a YAML file, expanding ${VAR} and ${VAR:-default} from the environment.
func LoadConfig(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(raw, os.LookupEnv)
}

// ParseConfig parses YAML after environment expansion. The error lists every problem found, each
// with its line: missing variables, unknown keys at any depth, values of the wrong type, bad sizes
// and durations. A syntax error ends the parse (YAML cannot be read past it). On error the returned
// Config holds what could be decoded (a missing variable is left as its literal ${NAME}), so that
// Validate can report the remaining problems too; it is nil only after a syntax error.
func ParseConfig(raw []byte, lookup func(string) (string, bool)) (*Config, error) {
	c, _, err := parseConfig(raw, lookup)
	return c, err
}

// parseConfig is ParseConfig that also returns the YAML tree (nil after a syntax error), whose
// lines place the problems Validate finds (configcheck.go).
func parseConfig(raw []byte, lookup func(string) (string, bool)) (*Config, *yaml.Node, error) {
	expanded, errs := expandEnv(raw, lookup)
	var c Config
	var doc yaml.Node
	if err := yaml.Unmarshal(expanded, &doc); err != nil {
		return nil, nil, configError(append(errs, err))
	}
	if doc.Kind == 0 { // empty file
		return &c, &doc, configError(errs)
	}
	errs = append(errs, unknownKeys(&doc, reflect.TypeOf(c), "")...)
	if err := doc.Decode(&c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				errs = append(errs, errors.New(m))
			}
		} else {
			errs = append(errs, err)
		}
	}
	return &c, &doc, configError(errs)
}

// configError joins errs ordered by line (stable), or returns nil.
func configError(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool { return errLine(errs[i]) < errLine(errs[j]) })
	return errors.Join(errs...)
}

// errLine extracts N from an error starting "line N:" (also yaml's "yaml: line N:"); others sort last.
func errLine(err error) int {
	s := strings.TrimPrefix(err.Error(), "yaml: ")
	if !strings.HasPrefix(s, "line ") {
		return 1 << 30
	}
	s = s[len("line "):]
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return 1 << 30
	}
	n, err2 := strconv.Atoi(s[:i])
	if err2 != nil {
		return 1 << 30
	}
	return n
}

func typeErr(format string, args ...any) error {
	return &yaml.TypeError{Errors: []string{fmt.Sprintf(format, args...)}}
}

// expandEnv replaces ${NAME} and ${NAME:-default}. A missing variable without a default is an
// error naming the variable and its line (never its value). Comments are left alone.
func expandEnv(raw []byte, lookup func(string) (string, bool)) ([]byte, []error) {
	var out bytes.Buffer
	var errs []error
	line := 1
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '\n' {
			line++
		}
		if c == '#' && (i == 0 || raw[i-1] == ' ' || raw[i-1] == '\n' || raw[i-1] == '\t') {
			// Comment: copy to end of line unchanged.
			j := bytes.IndexByte(raw[i:], '\n')
			if j < 0 {
				j = len(raw) - i
			}
			out.Write(raw[i : i+j])
			i += j - 1
			continue
		}
		if c != '$' || i+1 >= len(raw) || raw[i+1] != '{' {
			out.WriteByte(c)
			continue
		}
		end := bytes.IndexByte(raw[i:], '}')
		if end < 0 {
			errs = append(errs, fmt.Errorf("line %d: unterminated ${", line))
			out.WriteByte(c)
			continue
		}
		expr := string(raw[i+2 : i+end])
		name, def, hasDef := strings.Cut(expr, ":-")
		if !validEnvName(name) {
			errs = append(errs, fmt.Errorf("line %d: invalid variable name in ${%s}", line, name))
			out.Write(raw[i : i+end+1])
		} else if v, ok := lookup(name); ok && v != "" {
			out.WriteString(v)
		} else if hasDef {
			out.WriteString(def)
		} else {
			errs = append(errs, fmt.Errorf("line %d: environment variable %s is not set", line, name))
			out.Write(raw[i : i+end+1]) // keep ${NAME}: later checks see a value, never a secret
		}
		i += end
	}
	return out.Bytes(), errs
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// plainListener reports whether the plain-http listener on Address runs (server.plain_listener,
// default true).
func (s *ServerConfig) plainListener() bool { return s.PlainListener == nil || *s.PlainListener }
