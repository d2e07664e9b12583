// Walking the teardown list.
#include "app/teardown.h"

namespace evh::app {

void Teardown::runThrough(const std::string& name, Mode mode) {
  while (next_ < steps_.size()) {
    // Advance first: a step that leads back here (a stop from inside a
    // callback it runs) does not run twice.
    Step& step = steps_[next_++];
    step.fn(mode);
    if (step.name == name) {
      return;
    }
  }
}

void Teardown::runAll(Mode mode) {
  while (next_ < steps_.size()) {
    Step& step = steps_[next_++];
    step.fn(mode);
  }
}

}  // namespace evh::app
