// derpgo: derpd against Go's crypto/tls and net/http, the stacks
// Tailscale's clients are built on.  It prints one JSON line and exits
// 0 when every check held, else prints {"ok":false,"error":...} and
// exits 1.
//
//	derpgo -mode relay -addr 127.0.0.1:PORT -ca cert.pem [-bulk N]
//	derpgo -mode http -addr 127.0.0.1:PORT -http 127.0.0.1:PORT80 -ca cert.pem
//	derpgo -mode hold -addr 127.0.0.1:PORT -ca cert.pem [-keepalives N]
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"
)

type relayResult struct {
	OK         bool     `json:"ok"`
	Mode       string   `json:"mode"`
	TLS        string   `json:"tls"`
	Cipher     string   `json:"cipher"`
	TLS12      string   `json:"tls12_cipher"`
	Certs      int      `json:"peer_certs"`
	Verified   int      `json:"verified_chain"`
	Meta       metaCert `json:"meta"`
	FastStart  []bool   `json:"fast_start"`
	ServerInfo string   `json:"server_info"`
	Packets    int      `json:"packets"`
	Bytes      int64    `json:"bytes"`
	Pongs      int      `json:"pongs"`
	PeerGone   int      `json:"peer_gone_reason"`
	Seconds    float64  `json:"seconds"`
}

// second is time.Second times -timescale (valgrind runs of derpd).
var second = time.Second

var sizes = []int{0, 1, 37, 1200, 1500, 9000, 16384, 16385, 40000,
	maxPacket}

func fill(n, salt int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + salt)
	}
	return b
}

// relayOne sends one packet a to b and checks what b receives.
func relayOne(a, b *conn, n, salt int) error {
	want := fill(n, salt)
	if err := a.send(b.kp.pub, want); err != nil {
		return err
	}
	m, err := b.recv(10 * second)
	if err != nil {
		return fmt.Errorf("%d bytes: %v", n, err)
	}
	if m.typ != frameRecvPacket || m.src != a.kp.pub ||
		!bytes.Equal(m.data, want) {
		return fmt.Errorf("%d bytes: got frame %#x of %d from %s",
			n, m.typ, len(m.data), m.src)
	}
	return nil
}

func sendPing(c *conn) ([8]byte, error) {
	var data [8]byte

	if _, err := rand.Read(data[:]); err != nil {
		return data, err
	}
	return data, c.writeFrame(framePing, data[:])
}

func ping(c *conn) error {
	data, err := sendPing(c)
	if err != nil {
		return err
	}
	return pong(c, data)
}

func pong(c *conn, data [8]byte) error {
	m, err := c.recv(5 * second) // the Tailscale client's bound
	if err != nil {
		return fmt.Errorf("ping: %v", err)
	}
	if m.typ != framePong || !bytes.Equal(m.data, data[:]) {
		return fmt.Errorf("ping: got frame %#x", m.typ)
	}
	return nil
}

func relay(o dialOpts, bulk int) (*relayResult, error) {
	r := &relayResult{Mode: "relay", PeerGone: -1}
	start := time.Now()
	count := func(n int) {
		r.Packets++
		r.Bytes += int64(n)
	}
	ka, err := newKeyPair()
	if err != nil {
		return nil, err
	}
	kb, err := newKeyPair()
	if err != nil {
		return nil, err
	}
	// B without fast start (the 101 path a client takes behind a TLS
	// middlebox); then A as tailscaled with the meta-cert, which sends
	// NotePreferred, a packet to B and a Ping before ServerInfo.
	ob := o
	ob.fastStart = false
	b, err := dial(ob, kb)
	if err != nil {
		return nil, fmt.Errorf("client B: %v", err)
	}
	defer b.tc.Close()
	var early [8]byte
	oa := o
	oa.early = func(c *conn) error {
		if err := c.notePreferred(true); err != nil {
			return err
		}
		if err := c.send(kb.pub, fill(1200, 99)); err != nil {
			return err
		}
		var e error
		early, e = sendPing(c)
		return e
	}
	a, err := dial(oa, ka)
	if err != nil {
		return nil, fmt.Errorf("client A: %v", err)
	}
	defer a.tc.Close()
	if !a.meta.Found {
		return nil, errors.New("no derpkey meta-certificate in the " +
			"chain")
	}
	if err := pong(a, early); err != nil {
		return nil, fmt.Errorf("A's early %v", err)
	}
	r.Pongs++
	m, err := b.recv(10 * second)
	if err != nil || m.typ != frameRecvPacket || m.src != ka.pub ||
		!bytes.Equal(m.data, fill(1200, 99)) {
		return nil, fmt.Errorf("A's early packet: frame %#x, %v",
			m.typ, err)
	}
	count(1200)
	// C as a client stuck at TLS 1.2 (OpenSSL keeps its records).
	oc := ob
	oc.tls12 = true
	kc, err := newKeyPair()
	if err != nil {
		return nil, err
	}
	c, err := dial(oc, kc)
	if err != nil {
		return nil, fmt.Errorf("client C (TLS 1.2): %v", err)
	}
	defer c.tc.Close()
	r.TLS12 = tls.CipherSuiteName(c.tc.ConnectionState().CipherSuite)
	cs := a.tc.ConnectionState()
	r.TLS = "1.3"
	r.Cipher = tls.CipherSuiteName(cs.CipherSuite)
	r.Certs = len(cs.PeerCertificates)
	if len(cs.VerifiedChains) > 0 {
		r.Verified = len(cs.VerifiedChains[0])
	}
	r.Meta = a.meta
	r.FastStart = []bool{a.fastStart, b.fastStart, c.fastStart}
	r.ServerInfo = a.serverInfo
	if a.serverInfo != b.serverInfo {
		return nil, fmt.Errorf("ServerInfo %q and %q", a.serverInfo,
			b.serverInfo)
	}
	if err := b.notePreferred(false); err != nil {
		return nil, err
	}
	for _, x := range []*conn{a, b, c} {
		if err := ping(x); err != nil {
			return nil, err
		}
		r.Pongs++
	}
	for i, n := range sizes {
		if err := relayOne(a, b, n, i); err != nil {
			return nil, fmt.Errorf("A to B: %v", err)
		}
		count(n)
		if err := relayOne(b, a, n, i+100); err != nil {
			return nil, fmt.Errorf("B to A: %v", err)
		}
		count(n)
		if err := relayOne(c, a, n, i+200); err != nil {
			return nil, fmt.Errorf("C to A: %v", err)
		}
		count(n)
		if err := relayOne(a, c, n, i+300); err != nil {
			return nil, fmt.Errorf("A to C: %v", err)
		}
		count(n)
	}
	// Maximal packets in lock step (one 64 KiB packet fits a queue),
	// long enough for derpd's own KeyUpdates where it sends them.
	for i := 0; i < bulk; i++ {
		if err := relayOne(a, b, maxPacket, i); err != nil {
			return nil, fmt.Errorf("bulk A to B %d: %v", i, err)
		}
		if err := relayOne(b, a, maxPacket, i+1); err != nil {
			return nil, fmt.Errorf("bulk B to A %d: %v", i, err)
		}
		r.Packets += 2
		r.Bytes += 2 * maxPacket
	}
	if err := ping(a); err != nil {
		return nil, err
	}
	r.Pongs++
	// A leaves (close_notify, FIN): B, which received from A, is
	// told it is gone.
	a.tc.Close()
	m, err = b.recv(10 * second)
	if err != nil {
		return nil, fmt.Errorf("waiting for PeerGone: %v", err)
	}
	if m.typ != framePeerGone || m.src != a.kp.pub {
		return nil, fmt.Errorf("got frame %#x, want PeerGone", m.typ)
	}
	r.PeerGone = m.reason
	r.Seconds = time.Since(start).Seconds()
	r.OK = true
	return r, nil
}

func main() {
	mode := flag.String("mode", "relay", "relay or http")
	addr := flag.String("addr", "", "derpd's TLS listener, host:port")
	plain := flag.String("http", "", "derpd's port-80 listener")
	name := flag.String("servername", "localhost", "SNI and Host")
	ca := flag.String("ca", "", "PEM file of the trusted certificate(s)")
	bulk := flag.Int("bulk", 0, "64 KiB packets each way after the sizes")
	keepalives := flag.Int("keepalives", 2, "hold: KeepAlives before ready")
	scale := flag.Int("timescale", 1, "multiply every deadline by this")
	flag.Parse()
	second *= time.Duration(*scale)

	var res any
	err := func() error {
		pem, err := os.ReadFile(*ca)
		if err != nil {
			return err
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("%s: no certificate", *ca)
		}
		o := dialOpts{addr: *addr, serverName: *name, roots: roots,
			fastStart: true}
		switch *mode {
		case "relay":
			res, err = relay(o, *bulk)
		case "http":
			res, err = probeHTTP(o, *plain)
		case "hold":
			res, err = hold(o, *keepalives)
		default:
			err = fmt.Errorf("unknown mode %q", *mode)
		}
		return err
	}()
	if err != nil {
		res = map[string]any{"ok": false, "error": err.Error()}
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if err != nil {
		os.Exit(1)
	}
}
