package groupcommit

// Queued reports how many units wait in b's ordinary queue and in its
// prompt lane, so that a test can order its events without sleeping.
func Queued(b *Batcher) (ordinary, prompt int) { return len(b.queue), len(b.prompt) }

// Closed reports whether Close has stopped b accepting units.
func Closed(b *Batcher) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.closed
}
