#include "layers/workspace.h"

namespace pybert::layers {

Workspace& Workspace::for_this_thread() {
  thread_local Workspace workspace;
  return workspace;
}

}  // namespace pybert::layers
