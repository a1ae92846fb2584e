package s3test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// StartJaeger runs the installed Jaeger on its own ports: a span posted to OTLPURL (OTLP/HTTP JSON)
// comes back from the query API with its parent reference and tags.
func TestStartJaeger(t *testing.T) {
	j := StartJaeger(t)
	const trace, span, parent = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "eee19b7ec3c1b173"
	now := time.Now().UnixNano()
	body := `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"s3test"}}]},` +
		`"scopeSpans":[{"scope":{"name":"t"},"spans":[{"traceId":"` + trace + `","spanId":"` + span + `","parentSpanId":"` + parent +
		`","name":"op","kind":2,"startTimeUnixNano":"` + strconv.FormatInt(now-1e6, 10) + `","endTimeUnixNano":"` + strconv.FormatInt(now, 10) +
		`","attributes":[{"key":"k","value":{"intValue":"7"}}],"status":{}}]}]}]}`
	resp, err := http.Post(j.OTLPURL, "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("OTLP POST: %v %v", resp, err)
	}
	resp.Body.Close()
	tr := j.Trace(t, trace, 1, 20*time.Second)
	s := tr.Spans[0]
	if v, ok := s.Tag("k"); s.SpanID != span || s.Parent() != parent || s.OperationName != "op" || !ok || v != float64(7) {
		t.Errorf("span %+v", s)
	}
}

// install-jaeger.sh is a quick no-op once the binary is in place, and another binary is not taken
// for Jaeger.
func TestJaegerInstallIdempotent(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := JaegerPath()
	if err != nil {
		t.Fatal(err)
	}
	wantQuickNoop(t, root, "install-jaeger.sh", "jaeger v1.76.0 already installed: "+bin)
	other, err := OPAPath()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkJaeger(other); err == nil {
		t.Errorf("%s taken for Jaeger", other)
	}
}
