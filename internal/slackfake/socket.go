package slackfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Socket Mode: apps.connections.open answers ws://…/ws; the client connects, gets a
// hello, and then receives envelopes that it must acknowledge with their envelope_id.

type socketConn struct {
	ws *websocket.Conn
	wu sync.Mutex // one writer at a time
}

func (c *socketConn) write(v any) error {
	c.wu.Lock()
	defer c.wu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

type socketState struct {
	mu     sync.Mutex
	conns  []*socketConn
	acks   map[string]json.RawMessage
	seq    int
	closed bool
	change chan struct{} // closed and replaced on every connect and ack
	wg     sync.WaitGroup
}

func (s *socketState) init() {
	s.acks = map[string]json.RawMessage{}
	s.change = make(chan struct{})
}

// notify wakes waiters; callers hold s.mu.
func (s *socketState) notify() {
	close(s.change)
	s.change = make(chan struct{})
}

func (s *socketState) closeAll() {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.ws.Close()
	}
	s.wg.Wait()
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &socketConn{ws: ws}
	if err := c.write(map[string]any{"type": "hello", "num_connections": 1,
		"connection_info": map[string]any{"app_id": "A0FAKE"}}); err != nil {
		_ = ws.Close()
		return
	}
	st := &s.sock
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		_ = ws.Close()
		return
	}
	st.conns = append(st.conns, c)
	st.wg.Add(1)
	st.notify()
	st.mu.Unlock()

	done := make(chan struct{})
	go func() { // Slack pings; the client reconnects when pings stop.
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				c.wu.Lock()
				_ = ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(time.Second))
				c.wu.Unlock()
			}
		}
	}()
	defer func() {
		close(done)
		_ = ws.Close()
		st.mu.Lock()
		for i, x := range st.conns {
			if x == c {
				st.conns = append(st.conns[:i], st.conns[i+1:]...)
				break
			}
		}
		st.mu.Unlock()
		st.wg.Done()
	}()
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var ack struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(data, &ack) != nil || ack.EnvelopeID == "" {
			continue
		}
		st.mu.Lock()
		if ack.Payload == nil {
			ack.Payload = json.RawMessage("null")
		}
		st.acks[ack.EnvelopeID] = ack.Payload
		st.notify()
		st.mu.Unlock()
	}
}

// WaitSocket waits until a Socket Mode client is connected.
func (s *Server) WaitSocket(ctx context.Context) error {
	st := &s.sock
	for {
		st.mu.Lock()
		n, ch := len(st.conns), st.change
		st.mu.Unlock()
		if n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no Socket Mode client connected: %w", ctx.Err())
		case <-ch:
		}
	}
}

// SendInteractive sends an "interactive" envelope carrying payload (the JSON that
// HTTP delivery puts in the payload form field) to the newest Socket Mode client and
// returns its envelope id.
func (s *Server) SendInteractive(payload json.RawMessage) (string, error) {
	return s.SendEnvelope("interactive", payload)
}

// SendEnvelope sends an envelope of any type to the newest Socket Mode client.
func (s *Server) SendEnvelope(typ string, payload json.RawMessage) (string, error) {
	st := &s.sock
	st.mu.Lock()
	if len(st.conns) == 0 {
		st.mu.Unlock()
		return "", errors.New("no Socket Mode client connected")
	}
	c := st.conns[len(st.conns)-1]
	st.seq++
	id := fmt.Sprintf("env-%06d", st.seq)
	st.mu.Unlock()
	err := c.write(map[string]any{"envelope_id": id, "type": typ, "payload": payload,
		"accepts_response_payload": true, "retry_attempt": 0})
	return id, err
}

// WaitAck waits for the client's acknowledgement of an envelope and returns the
// payload it carried ("null" when none).
func (s *Server) WaitAck(ctx context.Context, envelopeID string) (json.RawMessage, error) {
	st := &s.sock
	for {
		st.mu.Lock()
		p, ok := st.acks[envelopeID]
		ch := st.change
		st.mu.Unlock()
		if ok {
			return p, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no ack for envelope %s: %w", envelopeID, ctx.Err())
		case <-ch:
		}
	}
}
