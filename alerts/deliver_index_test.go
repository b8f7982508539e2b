package alerts

import (
	"testing"
	"time"
)

// A replica that releases a claim it did not win (it gave up before
// reading the claims back: a slow insert, a shutdown in the settle wait)
// does not release the round the winner is delivering: otherwise the next
// tick would claim a new round and send the notification a second time,
// beside the winner's retries. The winner's own release does.
func TestIndexCountsOnlyTheWinnersRelease(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC)
	claim := func(replica string, nonce uint64, status string) logRow {
		return logRow{ID: "n1", Receiver: "hook", Round: 0, Status: status, Replica: replica, Nonce: nonce, At: at}
	}
	k := [2]string{"n1", "hook"}
	rows := []logRow{claim("a", 5, logSending), claim("b", 3, logSending), claim("a", 5, logReleased)}
	st := index(rows)[k]
	if st.winner == nil || st.winner.Replica != "b" {
		t.Fatalf("winner %+v, want b's claim (the smaller nonce)", st.winner)
	}
	if st.released[0] {
		t.Error("round 0 counted as released by the losing replica's release; want it held by b's claim")
	}
	st = index(append(rows, claim("b", 3, logReleased)))[k]
	if !st.released[0] {
		t.Error("round 0 not released by the winner's own release")
	}
	// A release whose claim never landed releases nothing.
	st = index([]logRow{claim("b", 3, logSending), claim("c", 9, logReleased)})[k]
	if st.released[0] {
		t.Error("a release without its claim released the round")
	}
}
