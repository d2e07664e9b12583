// evhost_build_info: which evhost and which plugin ABI a scrape came from.
#pragma once

#include "ops/stats.h"

namespace evh::ops {

// evhost_build_info{version="<project version>",abi="<major>.<minor>"} 1 --
// the version `evhost --version` prints, the ABI of sdk/include/evh/plugin.h
// this host was built with.
FamilySample buildInfo();

}  // namespace evh::ops
