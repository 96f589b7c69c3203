// Shared by the subcommands: option parsing with --help, and turning errors into exit codes.
#pragma once
#include <boost/program_options.hpp>
#include <iostream>
#include <string>

namespace dnn::cli {

namespace po = boost::program_options;

// Parses argv (argv[0] is the subcommand name) into `vm`. Prints help and returns false on --help;
// throws po::error for bad options (reported by guarded()).
bool parse(int argc, char** argv, const std::string& usage, po::options_description& opts,
           po::variables_map& vm, const po::positional_options_description* pos = nullptr);

// Runs a subcommand: any dnn::Error or bad option becomes "dnnswarm <cmd>: error: ..." and exit 1.
int guarded(const char* name, int (*fn)(int, char**), int argc, char** argv);

}  // namespace dnn::cli
