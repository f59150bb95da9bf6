"""Task events for followers: one watcher of the store per API process, cheap followers."""
