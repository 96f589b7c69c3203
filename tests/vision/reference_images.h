// The test images and their reference tensors, written once per test process by
// reference_images.py with Debian's Python, Pillow and numpy (an independent decoder and resampler).
#pragma once
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include "support/fixtures.h"

namespace dnn::test {

inline const std::string& reference_images_dir() {
  static const std::string dir = [] {
    const std::string d = "/tmp/vision-test-" + std::to_string(::getpid());
    std::filesystem::create_directories(d);
    // Debian's interpreter, not whichever python3 comes first on PATH: python3-pil and python3-numpy
    // are installed for it (tools/deps.sh).
    const std::string cmd = "/usr/bin/python3 " + source("tests/vision/reference_images.py") + " " + d;
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("failed: " + cmd);
    return d;
  }();
  return dir;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Removes the images when the test process ends.
struct ReferenceImagesCleanup : ::testing::Environment {
  void TearDown() override {
    std::filesystem::remove_all("/tmp/vision-test-" + std::to_string(::getpid()));
  }
};

}  // namespace dnn::test
