#include "cli/common.h"

#include "core/error.h"

namespace dnn::cli {

bool parse(int argc, char** argv, const std::string& usage, po::options_description& opts,
           po::variables_map& vm, const po::positional_options_description* pos) {
  opts.add_options()("help,h", "show this help");
  auto parser = po::command_line_parser(argc, argv).options(opts);
  if (pos) parser.positional(*pos);
  po::store(parser.run(), vm);
  if (vm.count("help")) {
    std::cout << "usage: dnnswarm " << argv[0] << " " << usage << "\n\n" << opts << "\n";
    return false;
  }
  po::notify(vm);
  return true;
}

int guarded(const char* name, int (*fn)(int, char**), int argc, char** argv) {
  try {
    return fn(argc, argv);
  } catch (const po::error& e) {
    std::cerr << "dnnswarm " << name << ": " << e.what() << " (see dnnswarm " << name << " --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "dnnswarm " << name << ": error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace dnn::cli
