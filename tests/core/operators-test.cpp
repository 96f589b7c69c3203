// The operator declaration (core/operators.def): lookups, and docs/operators.md's table of it.
#include "core/operators.h"

#include <gtest/gtest.h>

#include <set>
#include <sstream>

#include "support/doc_section.h"
#include "support/fixtures.h"

namespace dnn {
namespace {

TEST(Operators, SortedUniqueAndFound) {
  std::set<std::string> names;
  std::string prev;
  for (auto& op : operators()) {
    EXPECT_TRUE(names.insert(op.name).second) << "declared twice: " << op.name;
    EXPECT_LT(prev, op.name);
    prev = op.name;
    EXPECT_EQ(find_operator(op.name), &op);
    EXPECT_GE(op.since, 1) << op.name;
  }
  EXPECT_EQ(find_operator("NonMaxSuppression"), nullptr);
  EXPECT_FALSE(is_foldable_op("NonMaxSuppression"));
}

TEST(Operators, RulesTheToolsRelyOn) {
  EXPECT_EQ(shard_rule("Conv"), ShardRule::OutputChannels);
  EXPECT_EQ(shard_rule("Gemm"), ShardRule::RowsOrColumns);
  EXPECT_EQ(shard_rule("Relu"), ShardRule::None);
  EXPECT_EQ(shard_rule("NoSuchOp"), ShardRule::None);
  EXPECT_TRUE(has_fuse_role("Relu", kFuseActivation));
  EXPECT_TRUE(has_fuse_role("Conv", kFuseHost));
  EXPECT_FALSE(has_fuse_role("Tanh", kFuseActivation));
  EXPECT_TRUE(is_foldable_op("Shape"));
  EXPECT_FALSE(find_operator("Shape")->runs());
  EXPECT_TRUE(find_operator("Conv")->runs());
  // Every fused activation runs in an epilogue of a host that exists.
  for (auto& op : operators())
    if (op.fuse & kFuseActivation) {
      EXPECT_TRUE(op.runs()) << op.name;
    }
}

std::string fuse_text(unsigned f) {
  std::string s;
  auto add = [&s](const char* w) { s += (s.empty() ? "" : ", ") + std::string(w); };
  if (f & kFuseActivation) add("activation epilogue");
  if (f & kFuseResidual) add("residual epilogue");
  if (f & kFuseWeights) add("into weights");
  if (f & kFuseHost) add("takes epilogue");
  return s.empty() ? "-" : s;
}

std::string shard_text(ShardRule r) {
  switch (r) {
    case ShardRule::OutputChannels: return "output channels (grouped: whole groups)";
    case ShardRule::RowsOrColumns: return "output rows or input columns";
    case ShardRule::None: break;
  }
  return "-";
}

// The table docs/operators.md must hold, one row per declared operator.
std::string operator_table() {
  std::ostringstream o;
  o << "| Operator | Runs in layer | Folded at import | Fusion | Sharded by | Since opset |\n";
  o << "|---|---|---|---|---|---|\n";
  for (auto& op : operators())
    o << "| " << op.name << " | " << (op.runs() ? std::string(op.layer) : "- (constant inputs only)") << " | "
      << (op.foldable ? "yes" : "no") << " | " << fuse_text(op.fuse) << " | " << shard_text(op.shard) << " | "
      << op.since << " |\n";
  return o.str();
}

TEST(Operators, DocumentedTableMatchesDeclaration) {
  EXPECT_TRUE(test::doc_section_matches(test::source("docs/operators.md"), "operator-table", operator_table()));
}

}  // namespace
}  // namespace dnn
