// The paths of this build's binaries, from the defines CMake gives this file
// alone (tests/integration/CMakeLists.txt, evh_tested_binaries).
#include "support/tested_binaries.h"

namespace evh::test {

const char* evhostBin() { return EVH_EVHOST_BIN; }
const char* evhctlBin() { return EVH_EVHCTL_BIN; }
const char* testPluginDir() { return EVH_TEST_PLUGIN_DIR; }
const char* fsyncFailShim() { return EVH_FSYNC_FAIL_SHIM; }
const char* benchBinDir() { return EVH_BENCH_BIN_DIR; }

bool testedAsan() {
#if defined(EVH_TESTED_ASAN)
  return true;
#else
  return false;
#endif
}

}  // namespace evh::test
