package log

// Abandoning a log is an in-process stand-in for killing the process: the
// files close as a SIGKILL would leave them, so that the next start runs
// recovery (embedded clusters' Node.Kill, tests).
//
// What it leaves as a kill would: no flush (the data already written is in
// the page cache, which survives a process kill anyway), no trimmed
// indexes (they stay preallocated, with their zero tail), no last
// time-index entry, no recovery-point checkpoint, no clean-shutdown
// marker, and segments waiting for file.delete.delay.ms stay on disk as
// *.deleted files. What it cannot do: it waits for the appends and the
// background flushes in progress to finish (a kill would cut them short,
// possibly mid-batch), and it cannot lose what the page cache holds, which
// only a power loss does (internal/fs's crashable FS simulates that).

// Abandon stops the background work and closes every log's files without
// any of Close's shutdown steps, then unlocks the log dirs. The next
// OpenManager of the dirs recovers every log, as after a crash. Abandon
// after Close or Abandon does nothing.
func (m *Manager) Abandon() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	m.mu.Unlock()
	close(m.stop)
	m.wg.Wait()
	m.mu.RLock()
	for _, l := range m.logs {
		l.abandon()
	}
	m.mu.RUnlock()
	m.unlock()
}

// abandon closes the log's files as a kill would: see Manager.Abandon.
func (l *Log) abandon() {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed.Load() {
		return
	}
	l.bg.Wait()
	l.flusher.syncMu.Lock()
	defer l.flusher.syncMu.Unlock()
	l.closed.Store(true)
	l.deletesMu.Lock()
	for _, t := range l.deletes {
		t.Stop()
	}
	l.deletes = nil
	l.deletesMu.Unlock()
	l.structMu.Lock()
	defer l.structMu.Unlock()
	if p := l.segs.Load(); p != nil {
		for _, s := range *p {
			s.abandon()
		}
	}
}

// abandon closes the segment's files without segment.close's last
// time-index entry and index trims.
func (s *segment) abandon() {
	if !s.opened.Load() {
		return
	}
	for _, x := range []*index{s.offsets.index, s.times.index} {
		if x != nil {
			x.unmap()
			x.file.Close()
		}
	}
	s.offsets, s.times = offsetIndex{}, timeIndex{}
	s.file.Close()
	s.opened.Store(false)
}
