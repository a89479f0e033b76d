// Package testutil holds helpers shared by Oxcross's tests.
package testutil
