package strata

import (
	"fmt"

	"github.com/strata-io/strata/internal/fs"
)

// SetFS makes a stopped node open its log dirs through fsys from its
// next Restart: a crashable FS (fs.CrashFS) in the cluster power-loss
// tests of package strata_test.
func (n *Node) SetFS(fsys fs.FS) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mu.b != nil {
		return fmt.Errorf("cluster: node %d is running", n.id)
	}
	n.mu.fsys = fsys
	return nil
}
