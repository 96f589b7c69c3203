#include "engine/model.h"

#include "core/error.h"

namespace dnn {

Graph load_model(const std::string& path) {
  throw ModelError(path + ": model loading is not wired yet");
}

}  // namespace dnn
