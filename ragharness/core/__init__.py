"""The shared core every room stands on, importing no room: the typed records at the seams (`types`), the one
exception tree (`errors`), progress reporting (`progress`), atomic file writes and locks (`fileio`, `locking`),
strict YAML (`yamlio`), fault injection points (`faults`), memory limits (`memory`), text normalisation and
tokens (`text`, `normalise`), the plugin registry (`registry`) and secret references (`credentials`)."""
