package gameday

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// No Grafana runs here: Grafana is AGPL and may not be used or built on
// this project's machines. grafanaAPI checks each request kmt sends
// against Grafana's documented annotations API (method, path, headers, the
// body's fields and their types, epoch milliseconds) and answers with the
// documented responses; it is a contract check of kmt's requests, not a
// stand-in that proves Grafana accepts them.
type grafanaAPI struct {
	t     *testing.T
	token string
	mu    sync.Mutex
	reqs  []grafanaReq
	fail  int    // answer every request with this status
	msg   string // and this message
}

type grafanaReq struct {
	Method, Path string
	Body         map[string]any
}

func (g *grafanaAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if g.fail != 0 {
		w.WriteHeader(g.fail)
		fmt.Fprintf(w, `{"message":%q}`, g.msg)
		return
	}
	bad := func(f string, a ...any) {
		g.t.Errorf(f, a...)
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"message":"bad request"}`)
	}
	if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Accept") != "application/json" {
		bad("headers %v: want Content-Type and Accept application/json", r.Header)
		return
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+g.token {
		bad("Authorization %q: want Bearer <service account token>", got)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		bad("body %q: %v", raw, err)
		return
	}
	g.mu.Lock()
	g.reqs = append(g.reqs, grafanaReq{r.Method, r.URL.Path, body})
	n := len(g.reqs)
	g.mu.Unlock()
	allowed := map[string]bool{"text": true, "tags": true, "time": true, "timeEnd": true, "dashboardUID": true, "panelId": true}
	for k := range body {
		if !allowed[k] {
			bad("field %q is not in Grafana's annotation API", k)
			return
		}
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/annotations":
		if s, _ := body["text"].(string); s == "" {
			bad("POST without text (required)")
			return
		}
		fmt.Fprintf(w, `{"message":"Annotation added","id":%d}`, 1000+n)
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/api/annotations/"):
		fmt.Fprint(w, `{"message":"Annotation patched"}`)
	default:
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message":"Not found"}`)
	}
}

func epochMillis(t *testing.T, v any) int64 {
	t.Helper()
	n, ok := v.(json.Number)
	if !ok {
		t.Fatalf("%v (%T) is not a JSON number", v, v)
	}
	i, err := n.Int64()
	if err != nil {
		t.Fatalf("%v is not an integer: %v", n, err)
	}
	return i
}

// TestGrafanaRegionAnnotation: a fault becomes one region annotation:
// POST /api/annotations with time in epoch milliseconds, text, tags,
// dashboardUID and panelId, then PATCH /api/annotations/:id with timeEnd.
func TestGrafanaRegionAnnotation(t *testing.T) {
	api := &grafanaAPI{t: t, token: "glsa_test"}
	srv := httptest.NewServer(api)
	defer srv.Close()
	t.Setenv("GD_TOKEN", api.token)
	c, err := newGrafana(&Grafana{URL: srv.URL + "/", TokenEnv: "GD_TOKEN", DashboardUID: "kmt-mirror", PanelID: 4, Tags: []string{"drill"}})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 7, 13, 0, 0, 123e6, time.UTC)
	end := start.Add(4500 * time.Millisecond)
	id, err := c.start(context.Background(), start, "fault cut applied", "cut-wan", "cut")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.end(context.Background(), id, end, "fault cut applied, then reverted"); err != nil {
		t.Fatal(err)
	}
	if len(api.reqs) != 2 {
		t.Fatalf("requests %+v: want a POST and a PATCH", api.reqs)
	}
	post, patch := api.reqs[0], api.reqs[1]
	if post.Method != "POST" || post.Path != "/api/annotations" || epochMillis(t, post.Body["time"]) != start.UnixMilli() ||
		post.Body["dashboardUID"] != "kmt-mirror" || epochMillis(t, post.Body["panelId"]) != 4 {
		t.Errorf("POST %+v: want /api/annotations, time %d ms, dashboardUID, panelId", post, start.UnixMilli())
	}
	if tags := fmt.Sprint(post.Body["tags"]); tags != "[kmt gameday drill cut-wan cut]" {
		t.Errorf("tags %s", tags)
	}
	if patch.Method != "PATCH" || patch.Path != fmt.Sprintf("/api/annotations/%d", id) || epochMillis(t, patch.Body["timeEnd"]) != end.UnixMilli() {
		t.Errorf("PATCH %+v: want /api/annotations/%d with timeEnd %d ms", patch, id, end.UnixMilli())
	}
}

// TestGrafanaErrorsSayWhatToDo: Grafana's answer and what to check are in
// every error; an empty token variable is refused before the day starts.
func TestGrafanaErrorsSayWhatToDo(t *testing.T) {
	if _, err := newGrafana(&Grafana{URL: "http://grafana:3000", TokenEnv: "GD_EMPTY_TOKEN"}); err == nil || !strings.Contains(err.Error(), "$GD_EMPTY_TOKEN, which is empty") {
		t.Errorf("empty token variable: %v", err)
	}
	t.Setenv("GD_TOKEN", "old")
	for _, tc := range []struct {
		status int
		msg    string
		want   string
	}{
		{401, "invalid API key", "the token in $GD_TOKEN was refused"},
		{403, "You'll need additional permissions to perform this action", "annotations:create / annotations:write"},
		{404, "Not found", "Grafana's root URL, sub-path included"},
	} {
		api := &grafanaAPI{t: t, fail: tc.status, msg: tc.msg}
		srv := httptest.NewServer(api)
		c, _ := newGrafana(&Grafana{URL: srv.URL, TokenEnv: "GD_TOKEN"})
		_, err := c.start(context.Background(), time.Now(), "x")
		srv.Close()
		if err == nil || !strings.Contains(err.Error(), fmt.Sprint(tc.status)) || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("status %d: error %v: want the status, Grafana's message %q and %q", tc.status, err, tc.msg, tc.want)
		}
	}
	c, _ := newGrafana(&Grafana{URL: "http://127.0.0.1:1"})
	if _, err := c.start(context.Background(), time.Now(), "x"); err == nil || !strings.Contains(err.Error(), "is grafana.url reachable") {
		t.Errorf("unreachable Grafana: %v", err)
	}
}
