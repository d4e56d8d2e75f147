import CStenoSystem

extension WhisperEngine {
    /// Gives the pages of freed memory back to the system. The allocator keeps freed memory for reuse, so a
    /// process that drops an engine (a model unloaded to make room for another) would otherwise stay as large
    /// as it was; call this after the last reference to an engine is gone.
    public static func releaseFreedMemory() {
        _ = steno_release_free_memory()
    }
}
