// dlq_spool: the spool file, where dead-letter entries wait while Redis does
// not answer. One line per entry (spoolLine, entryOfLine), appended durably
// a batch at a time (one write + one fsync) and replaced atomically (a
// temporary file + rename) once entries reached Redis. Plain functions on a
// path: the caller serializes access (only the plugin's thread calls them).
// Failures come back as text in `error`.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dlq {

std::string errnoText(int err);

// The folder of a file path ("." for a bare name).
std::string dirOf(const std::string& file);

// ---- entries and spool lines --------------------------------------------------

// A dead-letter entry is one JSON object. Checking it up front keeps a torn
// spool line (not JSON) distinguishable from an entry.
bool isEntry(std::string_view text);

// One spool line per entry. The host's entries are compact JSON (no line
// breaks); an entry that has some anyway (only possible as whitespace between
// tokens) is spooled as a JSON string holding it, which keeps it byte-exact.
std::string spoolLine(std::string_view entry);

// The entry a spool line holds; nullopt for a corrupt line (a write cut short
// by a crash, or a line edited by hand).
std::optional<std::string> entryOfLine(std::string_view line);

// s for a log line: its first 200 bytes and "..." when longer.
std::string preview(std::string_view s);

// ---- file I/O (the spool) -----------------------------------------------------

// Appends each of `lines` and a newline with one write and one fsync,
// durably before returning true. On failure none of them is left in the
// file (it is cut back to its former size).
bool appendLines(const std::string& path, const std::vector<std::string>& lines, std::string& error);

// Reads the whole file; a missing file reads as empty.
bool readAll(const std::string& path, std::string& out, std::string& error);

// Replaces the file with `lines` atomically (write a temporary, fsync, rename),
// so that a crash leaves either the old or the new spool, never a mix.
bool rewriteLines(const std::string& path, const std::vector<std::string_view>& lines, std::string& error);

// Empties the file, durably; a missing file is already empty.
bool truncateFile(const std::string& path, std::string& error);

// Whether the path is a regular file with something in it.
bool fileHasData(const std::string& path);

// The lines of text that are not blank, without their '\n'.
std::vector<std::string_view> splitLines(std::string_view text);

}  // namespace dlq
