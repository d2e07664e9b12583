// The build-info family (EVH_VERSION comes from the project version in CMake).
#include "ops/build_info.h"

#include <evh/plugin.h>

#include <string>

namespace evh::ops {

FamilySample buildInfo() {
  FamilySample f;
  f.name = "evhost_build_info";
  f.help = "The evhost build: its version and the plugin ABI it implements (always 1).";
  f.kind = Kind::Info;
  SeriesSample s;
  s.labels = {{"abi", std::to_string(EVH_ABI_MAJOR) + "." + std::to_string(EVH_ABI_MINOR)}, {"version", EVH_VERSION}};
  s.exact = 1;
  s.value = 1;
  f.series.push_back(std::move(s));
  return f;
}

}  // namespace evh::ops
