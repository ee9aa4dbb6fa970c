// The HTTP endpoints Tailscale clients fetch with net/http: netcheck's
// latency probes and the captive-portal check (PROTOCOL.md 8.3, 8.4).
package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"time"
)

type httpResult struct {
	OK       bool   `json:"ok"`
	Mode     string `json:"mode"`
	TLS      string `json:"tls"`
	Cipher   string `json:"cipher"`
	Requests int    `json:"requests"`
	Reused   int    `json:"reused"`
	Plain    int    `json:"plain_requests"`
}

type check struct {
	method, url string
	header      map[string]string // request headers
	status      int
	want        map[string]string // response headers
}

func probeHTTP(o dialOpts, plain string) (*httpResult, error) {
	r := &httpResult{Mode: "http"}
	_, port, err := net.SplitHostPort(o.addr)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{
			ServerName: o.serverName,
			RootCAs:    o.roots,
		},
		// The URL names the host, as netcheck's does; the
		// connection goes to derpd's address.
		DialContext: func(ctx context.Context, network,
			addr string) (net.Conn, error) {
			if addr == o.serverName+":"+port {
				addr = o.addr
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConns: 1,
	}
	client := &http.Client{Transport: tr, Timeout: 10 * second,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
	host := "https://" + o.serverName + ":" + port
	challenge := "ts_127.0.0.1"
	probe := map[string]string{"Access-Control-Allow-Origin": "*"}
	noContent := map[string]string{
		"X-Tailscale-Response": "response " + challenge,
		"Cache-Control": "no-cache, no-store, must-revalidate, " +
			"no-transform, max-age=0",
	}
	chal := map[string]string{"X-Tailscale-Challenge": challenge}
	gen := fmt.Sprintf("/generate_204?t=%d", time.Now().Unix())
	checks := []check{
		// netcheck: HEAD twice (warm, then timed), then a GET.
		{"HEAD", host + "/derp/probe", nil, 200, probe},
		{"HEAD", host + "/derp/probe", nil, 200, probe},
		{"GET", host + "/derp/latency-check", nil, 200, probe},
		{"GET", host + gen, chal, 204, noContent},
		{"GET", host + "/derp", nil, 426, nil},
		{"POST", host + "/derp/probe", nil, 405, nil},
		{"GET", host + "/derp/probe", nil, 200, probe},
	}
	if plain != "" {
		checks = append(checks, check{"GET", "http://" + plain + gen,
			chal, 204, noContent})
	}
	for _, c := range checks {
		resp, reused, err := do(client, c)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %v", c.method, c.url, err)
		}
		if resp.TLS != nil {
			r.Requests++
			if reused {
				r.Reused++
			}
			if resp.TLS.Version != tls.VersionTLS13 {
				return nil, fmt.Errorf("%s: TLS %x", c.url,
					resp.TLS.Version)
			}
			r.TLS = "1.3"
			r.Cipher = tls.CipherSuiteName(resp.TLS.CipherSuite)
		} else {
			r.Plain++
		}
	}
	tr.CloseIdleConnections()
	r.OK = true
	return r, nil
}

// do makes one request on the client's connection pool, checks status
// and headers, and says whether the connection was a kept-alive one.
func do(client *http.Client, c check) (*http.Response, bool, error) {
	var reused bool

	req, err := http.NewRequest(c.method, c.url, nil)
	if err != nil {
		return nil, false, err
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	trace := &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
	}
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
	resp, err := client.Do(req)
	if err != nil {
		return nil, false, err
	}
	// netcheck reads at most 8 KiB.
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	resp.Body.Close()
	if err != nil {
		return nil, false, err
	}
	if resp.StatusCode != c.status {
		return nil, false, fmt.Errorf("status %d, want %d: %q",
			resp.StatusCode, c.status, body)
	}
	for k, v := range c.want {
		if got := resp.Header.Get(k); got != v {
			return nil, false, fmt.Errorf("%s: %q, want %q", k, got,
				v)
		}
	}
	if c.status == 204 && len(body) != 0 {
		return nil, false, fmt.Errorf("204 with a %d-byte body",
			len(body))
	}
	return resp, reused, nil
}
