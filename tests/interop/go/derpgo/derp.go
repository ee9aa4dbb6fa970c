// A DERP client over Go's crypto/tls, written from PROTOCOL.md: the
// upgrade request as Tailscale's derphttp client sends it, fast start
// from the meta-certificate, the handshake and the frames a normal
// client sends and receives.
package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
)

const (
	frameServerKey     = 0x01
	frameClientInfo    = 0x02
	frameServerInfo    = 0x03
	frameSendPacket    = 0x04
	frameRecvPacket    = 0x05
	frameKeepAlive     = 0x06
	frameNotePreferred = 0x07
	framePeerGone      = 0x08
	framePing          = 0x12
	framePong          = 0x13

	magic       = "DERP\xf0\x9f\x94\x91"
	keyLen      = 32
	nonceLen    = 24
	maxPacket   = 64 << 10
	maxFrameLen = 1 << 20 // what the Go client accepts
)

type key [keyLen]byte

func (k key) String() string { return hex.EncodeToString(k[:]) }

type keyPair struct {
	priv, pub key
}

func newKeyPair() (keyPair, error) {
	var kp keyPair

	if _, err := rand.Read(kp.priv[:]); err != nil {
		return kp, err
	}
	kp.priv[0] &= 248
	kp.priv[31] = (kp.priv[31] & 127) | 64
	pub, err := curve25519.X25519(kp.priv[:], curve25519.Basepoint)
	if err != nil {
		return kp, err
	}
	copy(kp.pub[:], pub)
	return kp, nil
}

// metaCert is what the derpkey certificate told us, and what Go's
// x509 made of it.
type metaCert struct {
	Found     bool   `json:"found"`
	Key       string `json:"key"`
	Serial    int64  `json:"serial"`
	Ed25519   bool   `json:"ed25519"`
	SelfSig   bool   `json:"self_signed_ok"`
	BasicCrit bool   `json:"basic_constraints_critical_ca_false"`
	NoSKIAKI  bool   `json:"no_ski_aki"`
	Valid     bool   `json:"valid_now"`
	Last      bool   `json:"last_in_chain"`
	server    key
}

var oidBasicConstraints = []int{2, 5, 29, 19}

// parseMetaCert looks, as the Tailscale client does, for a peer
// certificate whose CN is "derpkey" and 64 hex digits with a serial of
// at most 8 bits.  Each certificate is parsed again from its DER with
// x509.ParseCertificate, so a certificate Go's strict parser refuses
// is an error here even if the TLS stack had let it through.
func parseMetaCert(cs *tls.ConnectionState) (metaCert, error) {
	var m metaCert

	for i, c := range cs.PeerCertificates {
		again, err := x509.ParseCertificate(c.Raw)
		if err != nil {
			return m, fmt.Errorf("x509 refuses certificate %d: %v",
				i, err)
		}
		cn := again.Subject.CommonName
		if !strings.HasPrefix(cn, "derpkey") {
			continue
		}
		hexKey := cn[len("derpkey"):]
		raw, err := hex.DecodeString(hexKey)
		if err != nil || len(raw) != keyLen {
			return m, fmt.Errorf("meta-cert CN %q: not 64 hex",
				again.Subject.CommonName)
		}
		if again.SerialNumber.BitLen() > 8 ||
			again.SerialNumber.Sign() <= 0 {
			return m, fmt.Errorf("meta-cert serial %v",
				again.SerialNumber)
		}
		m.Found = true
		m.Key = hexKey
		copy(m.server[:], raw)
		m.Serial = again.SerialNumber.Int64()
		_, m.Ed25519 = again.PublicKey.(ed25519.PublicKey)
		// Not CheckSignatureFrom: that refuses a non-CA parent.
		m.SelfSig = again.CheckSignature(again.SignatureAlgorithm,
			again.RawTBSCertificate, again.Signature) == nil
		for _, e := range again.Extensions {
			if e.Id.Equal(oidBasicConstraints) {
				m.BasicCrit = e.Critical && !again.IsCA &&
					again.BasicConstraintsValid
			}
		}
		m.NoSKIAKI = len(again.SubjectKeyId) == 0 &&
			len(again.AuthorityKeyId) == 0
		now := time.Now()
		m.Valid = now.After(again.NotBefore) &&
			now.Before(again.NotAfter)
		m.Last = i == len(cs.PeerCertificates)-1
		return m, nil
	}
	return m, nil
}

// conn is one DERP connection.
type conn struct {
	tc         *tls.Conn
	br         *bufio.Reader
	bw         *bufio.Writer
	kp         keyPair
	server     key
	meta       metaCert
	fastStart  bool
	serverInfo string
}

type dialOpts struct {
	addr, serverName string
	roots            *x509.CertPool
	fastStart        bool // when the meta-cert allows it
	tls12            bool // TLS 1.2 only: no meta-cert scan
	// early writes frames behind ClientInfo before ServerInfo is
	// read: Tailscale's derp.NewClient returns once ClientInfo is
	// out, and its caller sends NotePreferred and packets at once.
	early func(c *conn) error
}

// dial connects, upgrades and completes the DERP handshake up to and
// including ServerInfo.
func dial(o dialOpts, kp keyPair) (*conn, error) {
	nc, err := net.DialTimeout("tcp", o.addr, 5*second)
	if err != nil {
		return nil, err
	}
	// The Tailscale client's 10 s for TLS, upgrade and handshake.
	nc.SetDeadline(time.Now().Add(10 * second))
	conf := &tls.Config{
		ServerName: o.serverName,
		RootCAs:    o.roots,
		MinVersion: tls.VersionTLS13,
	}
	if o.tls12 {
		conf.MinVersion = tls.VersionTLS12
		conf.MaxVersion = tls.VersionTLS12
	}
	tc := tls.Client(nc, conf)
	c := &conn{tc: tc, kp: kp}
	if err := c.start(o); err != nil {
		tc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *conn) start(o dialOpts) error {
	if err := c.tc.Handshake(); err != nil {
		return fmt.Errorf("TLS handshake: %v", err)
	}
	cs := c.tc.ConnectionState()
	want := uint16(tls.VersionTLS13)
	if o.tls12 {
		want = tls.VersionTLS12
	}
	if cs.Version != want {
		return fmt.Errorf("TLS version %x, want %x", cs.Version, want)
	}
	if cs.NegotiatedProtocol != "" {
		return fmt.Errorf("ALPN %q with none offered",
			cs.NegotiatedProtocol)
	}
	// As the Tailscale client: only TLS 1.3 hides the chain, so only
	// then is the meta-cert trusted to be the server's.
	meta, err := parseMetaCert(&cs)
	if err != nil {
		return err
	}
	if !o.tls12 {
		c.meta = meta
	}
	c.fastStart = o.fastStart && c.meta.Found
	c.br = bufio.NewReaderSize(c.tc, 4<<10)
	c.bw = bufio.NewWriterSize(c.tc, 4<<10)

	// The request as net/http writes it: Host, User-Agent
	// Go-http-client/1.1, then our headers in canonical case.
	req, err := http.NewRequest("GET", "https://"+o.serverName+"/derp",
		nil)
	if err != nil {
		return err
	}
	req.Header.Set("Upgrade", "DERP")
	req.Header.Set("Connection", "Upgrade")
	if c.fastStart {
		req.Header.Set("Derp-Fast-Start", "1")
		c.server = meta.server
	}
	if err := req.Write(c.bw); err != nil {
		return err
	}
	if !c.fastStart {
		if err := c.upgrade(req); err != nil {
			return err
		}
	}
	// Fast start: the request goes out with ClientInfo, in one write.
	if err := c.sendClientInfo(); err != nil {
		return err
	}
	if o.early != nil {
		if err := o.early(c); err != nil {
			return err
		}
	}
	return c.recvServerInfo()
}

// upgrade reads the 101 and the ServerKey frame behind it.
func (c *conn) upgrade(req *http.Request) error {
	if err := c.bw.Flush(); err != nil {
		return err
	}
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		return fmt.Errorf("upgrade response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("upgrade: %s: %s", resp.Status, b)
	}
	typ, p, err := c.readFrame()
	if err != nil {
		return err
	}
	if typ != frameServerKey || len(p) < len(magic)+keyLen ||
		string(p[:len(magic)]) != magic {
		return errors.New("invalid server greeting")
	}
	copy(c.server[:], p[len(magic):])
	if h := resp.Header.Get("Derp-Public-Key"); h != c.server.String() {
		return fmt.Errorf("Derp-Public-Key %q, ServerKey %s", h,
			c.server)
	}
	if c.meta.Found && c.meta.server != c.server {
		return errors.New("meta-cert key is not the ServerKey")
	}
	return nil
}

type clientInfo struct {
	Version     int `json:"version,omitempty"`
	CanAckPings bool
}

func (c *conn) sendClientInfo() error {
	var nonce [nonceLen]byte

	msg, err := json.Marshal(clientInfo{Version: 2, CanAckPings: true})
	if err != nil {
		return err
	}
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	sk, pk := [32]byte(c.kp.priv), [32]byte(c.server)
	p := append([]byte{}, c.kp.pub[:]...)
	p = append(p, nonce[:]...)
	p = box.Seal(p, msg, &nonce, &pk, &sk)
	return c.writeFrame(frameClientInfo, p)
}

// recvServerInfo takes the first frame the client parses: the
// ServerKey in fast start (skipped, as Tailscale's client skips it,
// after checking it names the meta-cert's key), then ServerInfo.
func (c *conn) recvServerInfo() error {
	for {
		typ, p, err := c.readFrame()
		if err != nil {
			return err
		}
		if typ == frameServerKey && c.fastStart {
			if len(p) < len(magic)+keyLen ||
				!bytes.Equal(p[len(magic):len(magic)+keyLen],
					c.server[:]) {
				return errors.New("ServerKey is not the " +
					"meta-cert's key")
			}
			continue
		}
		if typ != frameServerInfo {
			return fmt.Errorf("frame %#x before ServerInfo", typ)
		}
		if len(p) < nonceLen+box.Overhead {
			return errors.New("short ServerInfo")
		}
		var nonce [nonceLen]byte
		copy(nonce[:], p)
		sk, pk := [32]byte(c.kp.priv), [32]byte(c.server)
		msg, ok := box.Open(nil, p[nonceLen:], &nonce, &pk, &sk)
		if !ok {
			return errors.New("ServerInfo box does not open")
		}
		var si map[string]any
		if err := json.Unmarshal(msg, &si); err != nil {
			return fmt.Errorf("ServerInfo JSON: %v", err)
		}
		c.serverInfo = string(msg)
		return nil
	}
}

func (c *conn) writeFrame(typ byte, parts ...[]byte) error {
	var hdr [5]byte
	n := 0

	for _, p := range parts {
		n += len(p)
	}
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(n))
	c.bw.Write(hdr[:])
	for _, p := range parts {
		c.bw.Write(p)
	}
	return c.bw.Flush()
}

func (c *conn) readFrame() (byte, []byte, error) {
	var hdr [5]byte

	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrameLen {
		return 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return 0, nil, err
	}
	return hdr[0], p, nil
}

func (c *conn) send(dst key, pkt []byte) error {
	return c.writeFrame(frameSendPacket, dst[:], pkt)
}

func (c *conn) notePreferred(v bool) error {
	b := []byte{0}
	if v {
		b[0] = 1
	}
	return c.writeFrame(frameNotePreferred, b)
}

// msg is a frame the caller waits for; KeepAlive and a server Ping
// (answered) are handled on the way.
type msg struct {
	typ    byte
	src    key
	data   []byte
	reason int
}

func (c *conn) recv(timeout time.Duration) (msg, error) {
	c.tc.SetReadDeadline(time.Now().Add(timeout))
	defer c.tc.SetReadDeadline(time.Time{})
	for {
		typ, p, err := c.readFrame()
		if err != nil {
			return msg{}, err
		}
		m := msg{typ: typ, reason: -1}
		switch typ {
		case frameKeepAlive:
			continue
		case framePing:
			if len(p) < 8 {
				return m, errors.New("short Ping")
			}
			if err := c.writeFrame(framePong, p[:8]); err != nil {
				return m, err
			}
			continue
		case frameRecvPacket:
			if len(p) < keyLen {
				return m, errors.New("short RecvPacket")
			}
			copy(m.src[:], p)
			m.data = p[keyLen:]
		case framePeerGone:
			if len(p) < keyLen {
				return m, errors.New("short PeerGone")
			}
			copy(m.src[:], p)
			m.reason = 0
			if len(p) > keyLen {
				m.reason = int(p[keyLen])
			}
		case framePong:
			m.data = p
		default:
			return m, fmt.Errorf("unexpected frame %#x", typ)
		}
		return m, nil
	}
}
