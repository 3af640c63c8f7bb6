package gameday

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Grafana annotations, as Grafana's HTTP API documents them (legacy
// /api/annotations, served by every Grafana from 6.4 to 13; docs:
// developer-resources/api-reference/http-api/api-legacy/annotations):
//
//	POST  /api/annotations      {"time": ms, "timeEnd": ms, "text": "...", "tags": [...],
//	                             "dashboardUID": "...", "panelId": n}  -> {"message": "Annotation added", "id": n}
//	PATCH /api/annotations/:id  {"timeEnd": ms, "text": "..."}          -> {"message": "Annotation patched"}
//
// time and timeEnd are epoch milliseconds; without dashboardUID the
// annotation belongs to the organization and shows on any dashboard that
// queries the Grafana annotations data source by tag. Authentication: a
// service account token as "Authorization: Bearer <token>"; creating needs
// annotations:create, patching annotations:write (an Editor service
// account has both). Each fault becomes one region annotation: created
// when the fault is applied, its end patched in when it is reverted, so
// the dashboard shades exactly the window it was in force.

// grafanaClient posts a game day's annotations.
type grafanaClient struct {
	g     *Grafana
	token string
	hc    *http.Client
}

// newGrafana returns nil when the run book names no Grafana, and an error
// when it names a token variable that is empty.
func newGrafana(g *Grafana) (*grafanaClient, error) {
	if g == nil {
		return nil, nil
	}
	c := &grafanaClient{g: g, hc: httpClient}
	if g.TokenEnv != "" {
		c.token = os.Getenv(g.TokenEnv)
		if c.token == "" {
			return nil, fmt.Errorf("grafana.tokenEnv names $%s, which is empty: export a Grafana service account token with annotation rights in it (Administration > Service accounts), or remove tokenEnv for a Grafana without auth", g.TokenEnv)
		}
	}
	return c, nil
}

// start creates the region annotation of a fault applied at `at` and
// returns its id.
func (c *grafanaClient) start(ctx context.Context, at time.Time, text string, tags ...string) (int64, error) {
	body := map[string]any{"time": at.UnixMilli(), "text": text, "tags": append(append([]string{"kmt", "gameday"}, c.g.Tags...), tags...)}
	if c.g.DashboardUID != "" {
		body["dashboardUID"] = c.g.DashboardUID
	}
	if c.g.PanelID != 0 {
		body["panelId"] = c.g.PanelID
	}
	var out struct {
		ID      int64  `json:"id"`
		Message string `json:"message"`
	}
	if err := c.send(ctx, http.MethodPost, "/api/annotations", body, &out); err != nil {
		return 0, err
	}
	if out.ID == 0 {
		return 0, fmt.Errorf("grafana annotation: POST %s/api/annotations answered %q without an id: is grafana.url a Grafana?", c.base(), out.Message)
	}
	return out.ID, nil
}

// end sets the end of annotation id (the fault was reverted at `at`).
func (c *grafanaClient) end(ctx context.Context, id int64, at time.Time, text string) error {
	return c.send(ctx, http.MethodPatch, fmt.Sprintf("/api/annotations/%d", id), map[string]any{"timeEnd": at.UnixMilli(), "text": text}, nil)
}

func (c *grafanaClient) base() string { return strings.TrimRight(c.g.URL, "/") }

// send does one JSON request; an error says what Grafana answered and
// what to check.
func (c *grafanaClient) send(ctx context.Context, method, path string, body, into any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	u := c.base() + path
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("grafana annotation: grafana.url %q: %w", c.g.URL, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("grafana annotation: %s %s: %w (is grafana.url reachable from here?)", method, u, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		var m struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &m)
		return fmt.Errorf("grafana annotation: %s %s: %s%s: %s", method, u, resp.Status, suffix(m.Message), c.hint(resp.StatusCode))
	}
	if into != nil {
		if err := json.Unmarshal(raw, into); err != nil {
			return fmt.Errorf("grafana annotation: %s %s: the answer is not Grafana's JSON (%v): is grafana.url Grafana's root URL?", method, u, err)
		}
	}
	return nil
}

func (c *grafanaClient) hint(status int) string {
	switch status {
	case http.StatusUnauthorized:
		if c.token == "" {
			return "this Grafana needs a token: set grafana.tokenEnv to a variable holding a service account token"
		}
		return "the token in $" + c.g.TokenEnv + " was refused: is it a current service account token of this Grafana?"
	case http.StatusForbidden:
		return "the service account lacks annotations:create / annotations:write (give it the Editor role)"
	case http.StatusNotFound:
		return "no annotations API there: grafana.url must be Grafana's root URL, sub-path included (e.g. https://host/grafana)"
	case http.StatusBadRequest:
		return "Grafana refused the annotation (a dashboardUID that does not exist?)"
	}
	return "check grafana.url and Grafana's log"
}
