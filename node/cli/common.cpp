#include "cli/common.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>

#include "core/error.h"

namespace dnn::cli {

void add_broker_options(po::options_description& opts, BrokerFlags& flags, const std::string& default_url) {
  const char* broker_help =
      "MQTT broker URL: tcp://host:1883, ssl:// or mqtts://host:8883 (TLS); repeat or comma-separate for failover, tried in order";
  if (default_url.empty())
    opts.add_options()("broker,b", po::value(&flags.broker), broker_help);
  else
    opts.add_options()("broker,b", po::value(&flags.broker)->default_value({default_url}, default_url), broker_help);
  opts.add_options()
      ("username,u", po::value(&flags.username), "user name to log in with (default: anonymous)")
      ("password-file", po::value(&flags.password_file),
       "file whose first line is the password (default: the DNNSWARM_PASSWORD environment variable)")
      ("cafile", po::value(&flags.cafile), "CA certificate(s) to check the broker's TLS certificate (default: the system's)")
      ("cert", po::value(&flags.cert), "client certificate (PEM), for brokers that require one")
      ("key", po::value(&flags.key), "private key of --cert (PEM)")
      ("insecure", po::bool_switch(&flags.insecure), "TLS: do not check that the broker's certificate names its host");
}

BrokerConnection resolve_broker(const BrokerFlags& flags) {
  BrokerConnection c;
  c.urls = split_broker_urls(flags.broker);
  c.username = flags.username;
  c.cafile = flags.cafile;
  c.cert = flags.cert;
  c.key = flags.key;
  c.insecure = flags.insecure;
  if (!flags.password_file.empty()) {
    std::ifstream in(flags.password_file);
    if (!in) throw IoError("cannot read the password file '" + flags.password_file + "'");
    std::getline(in, c.password);
    if (!c.password.empty() && c.password.back() == '\r') c.password.pop_back();
    struct stat st{};
    if (::stat(flags.password_file.c_str(), &st) == 0 && (st.st_mode & 0077))
      std::cerr << "warning: the password file " << flags.password_file << " is readable by others (chmod 600 it)\n";
    if (c.username.empty()) throw Error("--password-file " + flags.password_file + " needs --username");
  } else if (const char* env = std::getenv(kPasswordEnv); env && !c.username.empty()) {
    c.password = env;
  }
  c.check();
  return c;
}

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
