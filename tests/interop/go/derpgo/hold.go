// A client that stays connected while derpd stops: KeepAlives while
// idle, then the Restarting frame and a clean end of the TLS stream.
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"
)

const frameRestarting = 0x15

type holdResult struct {
	OK          bool   `json:"ok"`
	Mode        string `json:"mode"`
	KeepAlives  int    `json:"keepalives"`
	ReconnectMs int64  `json:"reconnect_in_ms"`
	TryForMs    int64  `json:"try_for_ms"`
	End         string `json:"end"`
}

// hold prints {"ready":true} once it has seen keepalives KeepAlive
// frames, then reads until the stream ends; only io.EOF (close_notify,
// or a FIN at a record boundary) is a clean end.
func hold(o dialOpts, keepalives int) (*holdResult, error) {
	r := &holdResult{Mode: "hold", ReconnectMs: -1, TryForMs: -1}
	kp, err := newKeyPair()
	if err != nil {
		return nil, err
	}
	c, err := dial(o, kp)
	if err != nil {
		return nil, err
	}
	defer c.tc.Close()
	ready := false
	for {
		c.tc.SetReadDeadline(time.Now().Add(30 * second))
		typ, p, err := c.readFrame()
		if err == io.EOF {
			r.End = "EOF"
			break
		}
		if err != nil {
			return nil, fmt.Errorf("after %d KeepAlives: %v",
				r.KeepAlives, err)
		}
		switch typ {
		case frameKeepAlive:
			r.KeepAlives++
		case frameRestarting:
			if len(p) < 8 {
				return nil, fmt.Errorf("Restarting of %d bytes",
					len(p))
			}
			r.ReconnectMs = int64(binary.BigEndian.Uint32(p))
			r.TryForMs = int64(binary.BigEndian.Uint32(p[4:]))
		default:
			return nil, fmt.Errorf("unexpected frame %#x", typ)
		}
		if !ready && r.KeepAlives >= keepalives {
			fmt.Println(`{"ready":true}`)
			ready = true
		}
	}
	if r.ReconnectMs < 0 {
		return nil, fmt.Errorf("%s without a Restarting frame", r.End)
	}
	r.OK = true
	return r, nil
}
