package main

import "testing"

func TestParseStraceSummary(t *testing.T) {
	const text = `% time     seconds  usecs/call     calls    errors syscall
------ ----------- ----------- --------- --------- ----------------
 55.10    0.120000           6     20000           write
 40.00    0.090000           4     40000     20000 read
  4.90    0.010000           1      5000           epoll_wait
------ ----------- ----------- --------- --------- ----------------
100.00    0.220000           3     65000     20000 total
`
	got := parseStraceSummary(text)
	if len(got) != 3 || got[0].name != "read" || got[0].calls != 40000 || got[0].errors != 20000 ||
		got[1].name != "write" || got[1].calls != 20000 || got[1].errors != 0 || got[2].name != "epoll_wait" {
		t.Errorf("parseStraceSummary = %+v; want read 40000 (20000 errors), write 20000, epoll_wait 5000", got)
	}
}

func TestProfiled(t *testing.T) {
	for _, tt := range []struct {
		phase, target string
		want          bool
	}{
		{"sink", "mizuchi-splice", true}, {"sink", baseTarget, true}, {"sink", "haproxy", true}, {"sink", "goproxy", false},
		{"tls", "mizuchi-tls-client", true}, {"tls", "nginx-tls-upstream", true}, {"tls", "tlsrelay-client", false},
		{"tls", "direct", false}, {"versitygw", "mizuchi-splice", false},
	} {
		if got := profiled(tt.phase, tt.target); got != tt.want {
			t.Errorf("profiled(%q, %q) = %v; want %v", tt.phase, tt.target, got, tt.want)
		}
	}
}
