package browsertest_test

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/mizuchi/uploadr/internal/browsertest"
)

// target is a server on another origin that records what reaches it and answers CORS as told.
type target struct {
	allow string // Access-Control-Allow-Origin it sends; "" sends none

	mu      sync.Mutex
	methods []string
	body    []byte
}

func (tg *target) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	tg.mu.Lock()
	tg.methods = append(tg.methods, r.Method)
	if r.Method == http.MethodPut {
		tg.body = b
	}
	tg.mu.Unlock()
	if tg.allow != "" {
		w.Header().Set("Access-Control-Allow-Origin", tg.allow)
		w.Header().Set("Access-Control-Allow-Methods", "PUT")
		w.Header().Set("Access-Control-Allow-Headers", r.Header.Get("Access-Control-Request-Headers"))
		w.Header().Set("Access-Control-Expose-Headers", "ETag")
	}
	w.Header().Set("ETag", `"etag-`+strconv.Itoa(len(b))+`"`)
	w.WriteHeader(http.StatusOK)
}

func (tg *target) seen() ([]string, []byte) {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]string(nil), tg.methods...), tg.body
}

type putResult struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Error   string            `json:"error"`
}

// TestCrossOriginPut checks the harness against a plain Go server: a PUT with a custom header is
// preflighted, the body the page makes arrives as Bytes makes it, an exposed header is readable,
// and a server that sends no CORS headers gets the preflight only while the script sees a
// TypeError.
func TestCrossOriginPut(t *testing.T) {
	b := browsertest.Start(t)
	page := browsertest.NewOrigin(t)

	allowed := &target{allow: page.URL}
	allowedOrigin := browsertest.NewOrigin(t)
	allowedOrigin.Handle("/upload", allowed)
	refused := &target{}
	refusedOrigin := browsertest.NewOrigin(t)
	refusedOrigin.Handle("/upload", refused)

	const n, seed = 100_000, 7
	script := `return bt.attempt(() => bt.put(URL, bt.bytes(` + strconv.Itoa(n) + `, ` + strconv.Itoa(seed) + `), {"x-test": "1"}));`

	got := browsertest.Eval[putResult](t, b, page.URL+"/", "const URL = "+strconv.Quote(allowedOrigin.URL+"/upload")+";\n"+script)
	if got.Status != 200 || got.Headers["etag"] != `"etag-100000"` {
		t.Errorf("allowed PUT: got %+v; want 200 with the exposed ETag", got)
	}
	methods, body := allowed.seen()
	if len(methods) != 2 || methods[0] != "OPTIONS" || methods[1] != "PUT" {
		t.Errorf("allowed origin saw %v; want [OPTIONS PUT]", methods)
	}
	if !bytes.Equal(body, browsertest.Bytes(n, seed)) {
		t.Errorf("body differs from Bytes(%d, %d) (got %d bytes)", n, seed, len(body))
	}

	got = browsertest.Eval[putResult](t, b, page.URL+"/", "const URL = "+strconv.Quote(refusedOrigin.URL+"/upload")+";\n"+script)
	if got.Error != "TypeError: Failed to fetch" {
		t.Errorf("refused PUT: got %+v; want the browser's TypeError", got)
	}
	if methods, _ := refused.seen(); len(methods) != 1 || methods[0] != "OPTIONS" {
		t.Errorf("refusing origin saw %v; want [OPTIONS] only", methods)
	}
}
