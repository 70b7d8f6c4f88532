package natsjs

import "testing"

func TestParseAckSubject(t *testing.T) {
	for _, c := range []struct {
		subj string
		want ackMeta
		ok   bool
	}{
		{"$JS.ACK.EVENTS.wh_1.3.42.7.1700000000000000001.5", ackMeta{consumer: "wh_1", delivered: 3, seq: 42, pending: 5, ts: 1700000000000000001}, true},
		{"$JS.ACK.hub.ACCHASH.EVENTS.wh_1.1.9.2.1700000000000000002.0.tok", ackMeta{consumer: "wh_1", delivered: 1, seq: 9, ts: 1700000000000000002}, true},
		{"$JS.ACK._.ACCHASH.EVENTS.wh_1.2.10.4.17.1", ackMeta{consumer: "wh_1", delivered: 2, seq: 10, ts: 17, pending: 1}, true},
		{"$JS.ACK.EVENTS.wh_1.x.42.7.17.5", ackMeta{}, false},
		{"$JS.ACK.EVENTS.wh_1.3.42", ackMeta{}, false},
		{"_INBOX.abc", ackMeta{}, false},
	} {
		got, ok := parseAckSubject(c.subj)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("parseAckSubject(%q) = %+v, %v; want %+v, %v", c.subj, got, ok, c.want, c.ok)
		}
	}
}
