// A command in the Redis protocol's request form (RESP: an array of bulk
// strings), for hiredis's redisAsyncFormattedCommand.
//
// Why not hiredis's own formatter (redisAsyncCommandArgv): it appends each
// argument with sdscatfmt("$%u\r\n") and two sdscatlen calls, about 81 ns an
// argument here (2026-12-07: 211 µs for the product plugin's 2,600-argument
// EVALSHA of 64 events, 3.3 µs per event; its redisFormatCommandArgv, with
// sprintf, 299 µs). That was the largest single item in evhost's own CPU per
// event in the JollyJet pipeline. The request form is one production of the
// protocol (docs: https://redis.io/docs/reference/protocol-spec/, "Sending
// commands to a Redis server"): `*<argc>\r\n`, then `$<len>\r\n<bytes>\r\n`
// for each argument. hiredis still does everything else -- the connection,
// the reply parser, the callbacks -- and stays the reference: the unit test
// compares this with its formatter byte for byte.
#pragma once

#include <cstddef>
#include <string>

namespace evh::redis {

// Writes argv (lens[i] bytes each, binary-safe) into `out` as one command,
// replacing what it held, and a NUL after it; returns the command's length.
// `out` only grows (its size is the largest command's bound so far): the
// bytes past the NUL are left over, and a growing std::string would fill
// what it adds with zeros first -- a second pass over every byte.
size_t formatCommand(std::string& out, int argc, const char* const* argv, const size_t* lens);

}  // namespace evh::redis
