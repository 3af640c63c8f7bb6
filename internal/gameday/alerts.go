package gameday

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// firing returns the alerts firing now, by name, with when each started:
// from Alertmanager's /api/v2/alerts (active, not silenced) when am is set,
// else Prometheus's /api/v1/alerts (state firing).
func firing(ctx context.Context, prom, am *Endpoint) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	if am != nil {
		var alerts []struct {
			Labels   map[string]string `json:"labels"`
			StartsAt time.Time         `json:"startsAt"`
			Status   struct {
				State string `json:"state"`
			} `json:"status"`
		}
		if err := getJSON(ctx, strings.TrimRight(am.URL, "/")+"/api/v2/alerts?active=true&silenced=false&inhibited=false", &alerts); err != nil {
			return nil, fmt.Errorf("alertmanager alerts: %w", err)
		}
		for _, a := range alerts {
			if a.Status.State == "active" {
				out[a.Labels["alertname"]] = a.StartsAt
			}
		}
		return out, nil
	}
	if prom == nil {
		return out, nil
	}
	var r struct {
		Data struct {
			Alerts []struct {
				Labels   map[string]string `json:"labels"`
				State    string            `json:"state"`
				ActiveAt time.Time         `json:"activeAt"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := getJSON(ctx, strings.TrimRight(prom.URL, "/")+"/api/v1/alerts", &r); err != nil {
		return nil, fmt.Errorf("prometheus alerts: %w", err)
	}
	for _, a := range r.Data.Alerts {
		if a.State == "firing" {
			out[a.Labels["alertname"]] = a.ActiveAt
		}
	}
	return out, nil
}
