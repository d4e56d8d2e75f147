import StenoTranscribeCommand

// The offline `steno transcribe` command as a binary of its own (no server dependencies).
TranscribeCommand.main()
