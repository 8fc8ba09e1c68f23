package broker

// Abandon closes the broker as a process kill would leave it, for
// in-process crash tests (embedded clusters' Node.Kill): no producer-state
// snapshot at the log end, no leader-epoch checkpoint sync, and the logs
// are abandoned (log.Manager.Abandon: no flush, checkpoints or
// clean-shutdown marker), so that the next Open recovers every partition.
// Producer-state snapshots already being written (at a segment roll) are
// waited for, as the files must be closed before the dirs are reused.
// Abandon after Close or Abandon does nothing more.
func (b *Broker) Abandon() {
	b.stopOnce.Do(func() { close(b.stop) })
	b.expirer.Wait()
	for _, p := range b.Partitions() {
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.snapWG.Wait()
	}
	b.logs.Abandon()
}
