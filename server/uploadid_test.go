package server

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
)

// server.upload_id_secrets: from the environment, the first signs, empty entries after the first
// are skipped (a rotation slot left empty), and -check names a bad entry without showing it.
func TestUploadIDSecretsKey(t *testing.T) {
	const cur, prev = "current-secret-0123456789", "previous-secret-0123456789"
	for _, tc := range []struct {
		name, yaml string
		env        map[string]string
		want       []string // secrets reaching the engine
		err        string
	}{
		{name: "unset: derived keys", yaml: "", want: nil},
		{name: "rotation", yaml: `  upload_id_secrets: ["${UPLOAD_ID_SECRET}", "${UPLOAD_ID_SECRET_PREVIOUS}"]` + "\n",
			env: map[string]string{"UPLOAD_ID_SECRET": cur, "UPLOAD_ID_SECRET_PREVIOUS": prev}, want: []string{cur, prev}},
		{name: "no previous", yaml: `  upload_id_secrets: ["${UPLOAD_ID_SECRET}", "${UPLOAD_ID_SECRET_PREVIOUS:-}"]` + "\n",
			env: map[string]string{"UPLOAD_ID_SECRET": cur}, want: []string{cur}},
		{name: "first empty", yaml: `  upload_id_secrets: ["${UPLOAD_ID_SECRET:-}", "${UPLOAD_ID_SECRET_PREVIOUS}"]` + "\n",
			env: map[string]string{"UPLOAD_ID_SECRET_PREVIOUS": prev}, err: "server.upload_id_secrets[0] is empty"},
		{name: "short", yaml: `  upload_id_secrets: ["${UPLOAD_ID_SECRET}", "tooshort"]` + "\n",
			env: map[string]string{"UPLOAD_ID_SECRET": cur}, err: "server.upload_id_secrets[1] is 8 bytes: want at least 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := map[string]string{}
			for k, v := range sampleEnv {
				e[k] = v
			}
			for k, v := range tc.env {
				e[k] = v
			}
			y := strings.Replace(sample, "server:\n", "server:\n"+tc.yaml, 1)
			c, err := ParseConfig([]byte(y), env(e))
			if err != nil {
				t.Fatal(err)
			}
			c.Normalize()
			err = c.Validate()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Count(err.Error(), "upload_id_secrets") != 1 {
					t.Fatalf("Validate = %v; want one error %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "tooshort") || strings.Contains(err.Error(), prev) {
					t.Errorf("the error shows a secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			o, err := c.EngineOptions(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			routes := strings.Join(c.Routes(), "\n")
			want := "keyed by a key derived from each bucket's upstream secret"
			if len(tc.want) > 0 {
				want = "keyed by server.upload_id_secrets (" + strconv.Itoa(len(tc.want)) + ": the first signs"
			}
			if !strings.Contains(routes, want) || strings.Contains(routes, cur) || strings.Contains(routes, prev) {
				t.Errorf("Routes():\n%s\nwant %q and no secret", routes, want)
			}
			if len(o.UploadIDSecrets) != len(tc.want) {
				t.Fatalf("UploadIDSecrets = %d entries; want %d", len(o.UploadIDSecrets), len(tc.want))
			}
			for i, w := range tc.want {
				if !bytes.Equal(o.UploadIDSecrets[i], []byte(w)) {
					t.Errorf("UploadIDSecrets[%d] differs", i)
				}
			}
		})
	}
}

// A config-less start takes the secrets from the environment (never from flags).
func TestConfiglessUploadIDSecrets(t *testing.T) {
	base := map[string]string{EnvUpstreamAccessKey: "uak", EnvUpstreamSecretKey: "usk"}
	args := []string{"-bucket", "up", "-upstream", "http://127.0.0.1:7070", "-auth-none"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	c, err := parseFlags(t, args...).Config(env(with(EnvUploadIDSecret, "current-secret-0123456789", EnvUploadIDSecretPrevious, "previous-secret-0123456789")))
	if err != nil {
		t.Fatal(err)
	}
	if o, err := c.EngineOptions(nil, nil); err != nil || len(o.UploadIDSecrets) != 2 || string(o.UploadIDSecrets[1]) != "previous-secret-0123456789" {
		t.Errorf("UploadIDSecrets: %d entries, %v", len(o.UploadIDSecrets), err)
	}
	c, err = parseFlags(t, args...).Config(env(with(EnvUploadIDSecret, "current-secret-0123456789")))
	if o, _ := c.EngineOptions(nil, nil); err != nil || len(o.UploadIDSecrets) != 1 {
		t.Errorf("without a previous secret: %d entries, %v", len(o.UploadIDSecrets), err)
	}
	if _, err := parseFlags(t, args...).Config(env(with(EnvUploadIDSecretPrevious, "previous-secret-0123456789"))); err == nil ||
		!strings.Contains(err.Error(), EnvUploadIDSecret) || strings.Contains(err.Error(), "previous-secret") {
		t.Errorf("previous without current: %v", err)
	}
	if _, err := parseFlags(t, args...).Config(env(with(EnvUploadIDSecret, "short"))); err == nil || !strings.Contains(err.Error(), "upload_id_secrets[0]") {
		t.Errorf("short secret: %v", err)
	}
}
