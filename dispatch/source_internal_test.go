package dispatch

import "testing"

// TestDecide pins the one settlement table both sources share: every
// combination of outcome and delivery state, against the verdict written
// out by hand from the rules in decide's doc comment.
func TestDecide(t *testing.T) {
	failures := []string{outcomeHTTPError, outcomeTimeout, outcomeConnError}
	type state struct{ manual, pending, retrying, handsBack, retriesLeft bool }
	cases := []struct {
		name    string
		outcome []string
		st      state
		want    verdict
	}{
		{"success acks whatever the state", []string{outcomeSuccess}, state{manual: true, pending: true, retrying: true}, verdictAck},
		{"success acks a scheduled attempt", []string{outcomeSuccess}, state{}, verdictAck},
		{"410 gives up even with retries left", []string{outcomeGone}, state{retriesLeft: true, handsBack: true}, verdictTerm},
		{"410 gives up on a manual attempt", []string{outcomeGone}, state{manual: true, pending: true}, verdictTerm},
		{"a failed manual attempt leaves a waiting retry standing", failures, state{manual: true, pending: true, retrying: true, retriesLeft: true}, verdictStands},
		{"a cancelled manual attempt leaves a waiting retry standing", []string{outcomeCanceled}, state{manual: true, pending: true, handsBack: true}, verdictStands},
		{"a failed manual attempt of a settled delivery fails it", failures, state{manual: true, retriesLeft: true}, verdictTerm},
		{"a failed manual attempt of a retrying delivery whose retry fell due retries", failures, state{manual: true, retrying: true, retriesLeft: true}, verdictRetry},
		{"a queue hands a stopped attempt back", []string{outcomeCanceled}, state{handsBack: true}, verdictRelease},
		{"a queue hands a stopped attempt back even with the schedule spent", []string{outcomeCanceled}, state{handsBack: true}, verdictRelease},
		{"the log retries a stopped attempt on the schedule", []string{outcomeCanceled}, state{retriesLeft: true}, verdictRetry},
		{"the log gives up a stopped attempt with the schedule spent", []string{outcomeCanceled}, state{}, verdictTerm},
		{"a failure with retries left retries", failures, state{retriesLeft: true}, verdictRetry},
		{"a failure with retries left retries on a queue too", failures, state{retriesLeft: true, handsBack: true}, verdictRetry},
		{"a failure with the schedule spent gives up", failures, state{handsBack: true}, verdictTerm},
	}
	for _, tc := range cases {
		for _, o := range tc.outcome {
			st := tc.st
			if got := decide(o, st.manual, st.pending, st.retrying, st.handsBack, st.retriesLeft); got != tc.want {
				t.Errorf("%s (%s): verdict %d, want %d", tc.name, o, got, tc.want)
			}
		}
	}
}
