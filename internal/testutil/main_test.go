package testutil

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the helpers leave no goroutine behind once their
// tests have cleaned up.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
