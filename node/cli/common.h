// Shared by the subcommands: option parsing with --help, and turning errors into exit codes.
#pragma once
#include <boost/program_options.hpp>
#include <iostream>
#include <string>
#include <vector>

#include "transport/connection.h"

namespace dnn::cli {

namespace po = boost::program_options;

// Parses argv (argv[0] is the subcommand name) into `vm`. Prints help and returns false on --help;
// throws po::error for bad options (reported by guarded()).
bool parse(int argc, char** argv, const std::string& usage, po::options_description& opts,
           po::variables_map& vm, const po::positional_options_description* pos = nullptr);

// The connection flags every program that talks to the broker takes, named like Mosquitto's clients:
// --broker URL (repeat it or give a comma-separated list for failover), --username, --password-file
// (or $DNNSWARM_PASSWORD; there is no password flag: argv shows in `ps`), --cafile, --cert, --key,
// --insecure. Usage: add_broker_options(opts, flags); parse(...); BrokerConnection c = resolve_broker(flags);
struct BrokerFlags {
  std::vector<std::string> broker;
  std::string username, password_file, cafile, cert, key;
  bool insecure = false;
};
// `default_url` is shown as --broker's default and used when no --broker is given ("" = none).
void add_broker_options(po::options_description& opts, BrokerFlags& flags,
                        const std::string& default_url = "tcp://127.0.0.1:1883");
// The settings, password included (the file's first line, else $DNNSWARM_PASSWORD), checked.
// Throws Error on an unreadable password file or a bad URL.
BrokerConnection resolve_broker(const BrokerFlags& flags);

// Runs a subcommand: any dnn::Error or bad option becomes "dnnswarm <cmd>: error: ..." and exit 1.
int guarded(const char* name, int (*fn)(int, char**), int argc, char** argv);

}  // namespace dnn::cli
