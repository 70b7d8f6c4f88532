package client

// ParseRetryAfter exposes parseRetryAfter to the table test.
var ParseRetryAfter = parseRetryAfter
