// Tables in docs/ that the code generates: the text between "<!-- begin NAME -->" and
// "<!-- end NAME -->" in a doc must equal what a test derives from the code. With DNN_UPDATE_DOCS=1 in
// the environment the test rewrites the section instead of failing (then review the diff).
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace dnn::test {

inline ::testing::AssertionResult doc_section_matches(const std::string& path, const std::string& name,
                                                       const std::string& expected) {
  std::ifstream f(path);
  if (!f) return ::testing::AssertionFailure() << "cannot read " << path;
  std::stringstream ss;
  ss << f.rdbuf();
  std::string text = ss.str();
  const std::string begin = "<!-- begin " + name + " -->\n", end = "<!-- end " + name + " -->";
  const size_t b = text.find(begin), e = text.find(end);
  if (b == std::string::npos || e == std::string::npos || e < b)
    return ::testing::AssertionFailure() << path << " has no section '" << name << "' (" << begin << "... " << end << ")";
  const size_t from = b + begin.size();
  if (text.compare(from, e - from, expected) == 0) return ::testing::AssertionSuccess();
  const char* update = std::getenv("DNN_UPDATE_DOCS");
  if (update && std::string(update) == "1") {
    text.replace(from, e - from, expected);
    std::ofstream(path) << text;
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << path << ": section '" << name << "' disagrees with the code; run the test "
                                       << "with DNN_UPDATE_DOCS=1 to rewrite it. Expected:\n" << expected;
}

}  // namespace dnn::test
