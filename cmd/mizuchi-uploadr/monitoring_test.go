package main

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// monitoringDir holds the Grafana dashboard and the Prometheus alert rules.
var monitoringDir = filepath.Join("..", "..", "deploy", "monitoring")

// The alert rules pass `promtool check rules`, and `promtool test rules` runs a case for every
// rule (alerts_test.yml: a series that fires, one that does not).
func TestAlertRules(t *testing.T) {
	if out, err := runPromtool(t, monitoringDir, "", "check", "rules", "alerts.yml"); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	out, err := runPromtool(t, monitoringDir, "", "test", "rules", "alerts_test.yml")
	if err != nil || !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
	rules, _ := os.ReadFile(filepath.Join(monitoringDir, "alerts.yml"))
	tests, _ := os.ReadFile(filepath.Join(monitoringDir, "alerts_test.yml"))
	for _, m := range regexp.MustCompile(`(?m)^\s+- alert: (\w+)`).FindAllStringSubmatch(string(rules), -1) {
		if !strings.Contains(string(tests), "alertname: "+m[1]+"\n") {
			t.Errorf("alert %s has no case in alerts_test.yml", m[1])
		}
	}
}

// dashboard is the part of the Grafana dashboard JSON the test reads.
type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// Every metric name the dashboard, the rules and their tests reference exists in a real scrape of
// the proxy (https listener on, after mixed traffic), and a real Prometheus that scrapes it loads
// the rules (all healthy) and answers every dashboard query (Grafana's variables replaced).
func TestMonitoringAssetsMatchMetrics(t *testing.T) {
	var d dashboard
	raw, err := os.ReadFile(filepath.Join(monitoringDir, "mizuchi-uploadr-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.Title == "" || d.UID == "" || len(d.Panels) < 10 {
		t.Fatalf("dashboard: title %q uid %q, %d panels", d.Title, d.UID, len(d.Panels))
	}

	p := startTLSProxy(t, "monitoring")
	mixedTraffic(t, p)
	e := parseExposition(t, rawScrape(t, p.admin))
	nameRe := regexp.MustCompile(`\bmizuchi_[a-z0-9_]+`)
	for _, f := range []string{"mizuchi-uploadr-dashboard.json", "alerts.yml", "alerts_test.yml"} {
		b, err := os.ReadFile(filepath.Join(monitoringDir, f))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, n := range nameRe.FindAllString(string(b), -1) {
			if seen[n] {
				continue
			}
			seen[n] = true
			if !e.series[n] {
				t.Errorf("%s references %s: not in a scrape", f, n)
			}
		}
		if len(seen) < 5 {
			t.Errorf("%s: only %d metric names found", f, len(seen))
		}
	}

	rulesPath, err := filepath.Abs(filepath.Join(monitoringDir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	prom := startPrometheus(t, p.admin, rulesPath)
	prom.waitQuery(t, `mizuchi_build_info{job="mizuchi"}`, 20e9, func(s []sample) bool { return len(s) == 1 })
	grafana := strings.NewReplacer("$__rate_interval", "1m", "$instance", ".*")
	var exprs []string
	for _, pn := range d.Panels {
		for _, tg := range pn.Targets {
			if tg.Expr == "" {
				t.Errorf("panel %q: a target without expr", pn.Title)
			}
			exprs = append(exprs, grafana.Replace(tg.Expr))
		}
	}
	sort.Strings(exprs)
	for _, q := range exprs {
		prom.query(t, q) // fails the test on a query Prometheus refuses
	}
	resp, err := http.Get(prom.url + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rr struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name   string `json:"name"`
					Health string `json:"health"`
					Error  string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rr.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health == "err" {
				t.Errorf("rule %s: %s", r.Name, r.Error)
			}
		}
	}
	if n < 7 {
		t.Errorf("Prometheus loaded %d rules", n)
	}
}
