// Errors that reach the user. Every failure caused by input (a file, a message, a shape) throws one of
// these with a message that names what was wrong and where; callers print it and exit non-zero.
#pragma once
#include <stdexcept>
#include <string>

namespace dnn {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ModelError : Error { using Error::Error; };   // unsupported op, corrupt or truncated model file
struct ShapeError : Error { using Error::Error; };   // an input or intermediate of the wrong shape
struct IoError : Error { using Error::Error; };      // missing file, short read

}  // namespace dnn
