// What a process-driving test runs and loads: evhost, evhctl, the test
// plugins, the fsync-failing shim, the benchmark tools -- and whether they
// were built with AddressSanitizer. Answered by tested_binaries.cpp, which is
// compiled in the build whose binaries are tested; the drivers' own objects
// hold no path of a build. That lets the sanitizer build link the release
// build's driver objects instead of compiling them again
// (EVH_PROCESS_DRIVERS_FROM, tests/CMakeLists.txt), and still test its own
// sanitized binaries.
#pragma once

namespace evh::test {

// Absolute paths.
const char* evhostBin();
const char* evhctlBin();
const char* testPluginDir();
const char* fsyncFailShim();
// Where evh_loadgen and evh_ref_sub are.
const char* benchBinDir();

// Whether the evhost and evhctl tested are sanitized (AddressSanitizer +
// UBSan): their memory bounds and rates differ there.
bool testedAsan();

}  // namespace evh::test
