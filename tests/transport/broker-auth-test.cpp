// Joining a secured broker: Mosquitto with broker-config/mosquitto-production.conf (logins required,
// a TLS listener with a CA and certificates made by openssl at test time). Logins, TLS, hostname
// checks, failover, and the one clear error line (exit 1) of the CLI when the broker refuses.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "core/error.h"
#include "support/fixtures.h"
#include "support/mosquitto.h"
#include "transport/mqtt_client.h"

namespace dnn {
namespace {

using namespace std::chrono_literals;

class BrokerAuth : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/broker-auth-test-XXXXXX";
    ASSERT_TRUE(mkdtemp(tmpl));
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755);
    test::write_password_file(dir_ + "/passwd", {{"cam", "s3cret"}});
    write(dir_ + "/good.pw", "s3cret\n");
    write(dir_ + "/bad.pw", "guess\n");
    broker_ = std::make_unique<test::MosquittoBroker>(
        test::SecureBroker{dir_ + "/passwd", "", certs_.ca(), certs_.server()});
  }
  void TearDown() override {
    broker_.reset();
    (void)!system(("rm -rf " + dir_).c_str());
  }
  static void write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
    chmod(path.c_str(), 0600);
  }

  // The error connect() throws for these settings, or "" when it connects.
  static std::string connect_error(const BrokerConnection& b) {
    MqttOptions o;
    o.broker = b;
    o.client_id = "probe";
    o.connect_timeout = 60s;   // a refusal must not wait for this: it is final at once
    try {
      MqttClient c(o, [](Inbound&&) {});
      c.connect();
      return "";
    } catch (const Error& e) {
      return e.what();
    }
  }

  // Publishes on a topic and reads it back through the same login: the connection really works.
  static void round_trip(const BrokerConnection& b) {
    BoundedQueue<Inbound> inbox(16);
    MqttOptions o;
    o.broker = b;
    o.client_id = "cam";
    MqttClient c(o, [&](Inbound&& m) { inbox.try_push(std::move(m)); });
    c.connect();
    c.subscribe("dnnswarm/test/echo");
    ASSERT_TRUE(c.publish("dnnswarm/test/echo", "hello"));
    auto got = inbox.pop_for(10s);
    ASSERT_TRUE(got);
    EXPECT_EQ(*got->payload, "hello");
  }

  BrokerConnection login(const std::string& url, const std::string& password = "s3cret") const {
    BrokerConnection b(url);
    b.username = "cam";
    b.password = password;
    return b;
  }

  // `dnnswarm infer` against the secured broker: its exit code and what it printed.
  int infer(const std::string& flags, std::string* out) const {
    return test::run_cli("infer --model lenet5 --input " + test::fixture("lenet5_mnist/test_inputs_100.npy") +
                             " " + flags,
                         out);
  }

  std::string dir_;
  test::TestCerts certs_;
  std::unique_ptr<test::MosquittoBroker> broker_;
};

size_t lines(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }

TEST_F(BrokerAuth, AnonymousClientsAreRefusedWithOneClearLine) {
  EXPECT_EQ(connect_error(broker_->url()),
            "broker " + broker_->url() + " refused the login for anonymous clients (not authorized: it requires "
            "--username and a password)");
  std::string out;
  EXPECT_EQ(infer("--broker " + broker_->url(), &out), 1) << out;
  EXPECT_EQ(out, "dnnswarm infer: error: broker " + broker_->url() +
                     " refused the login for anonymous clients (not authorized: it requires --username and a password)\n");
}

TEST_F(BrokerAuth, AGoodLoginWorks) { round_trip(login(broker_->url())); }

TEST_F(BrokerAuth, ABadPasswordGivesOneLineAndExitCode1) {
  EXPECT_NE(connect_error(login(broker_->url(), "guess")).find("refused the login for user 'cam'"), std::string::npos);
  std::string out;
  EXPECT_EQ(infer("--broker " + broker_->url() + " --username cam --password-file " + dir_ + "/bad.pw", &out), 1);
  EXPECT_EQ(out, "dnnswarm infer: error: broker " + broker_->url() +
                     " refused the login for user 'cam' (not authorized: wrong password, or the user may not connect)\n");
}

TEST_F(BrokerAuth, ThePasswordComesFromTheEnvironment) {
  std::string out;
  setenv(kPasswordEnv, "s3cret", 1);
  const int rc = infer("--broker " + broker_->url() + " --username cam", &out);
  unsetenv(kPasswordEnv);
  // Logged in: it gets as far as asking for the model, which nobody serves here.
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("unknown model 'lenet5'"), std::string::npos) << out;
}

TEST_F(BrokerAuth, TlsWorksWithTheTestCa) {
  BrokerConnection b = login(broker_->tls_url());
  b.cafile = certs_.ca();
  round_trip(b);
  // mqtts:// = ssl://; by address (a fresh machine may have no "localhost" in /etc/hosts)
  b.urls = {"mqtts://127.0.0.1:" + std::to_string(broker_->tls_port())};
  round_trip(b);
}

TEST_F(BrokerAuth, AWrongCaIsRefusedWithAClearError) {
  BrokerConnection b = login(broker_->tls_url());
  b.cafile = certs_.other_ca();
  EXPECT_EQ(connect_error(b), "broker " + broker_->tls_url() + " could not be reached over TLS: its TLS certificate is "
                              "not signed by the CA in " + certs_.other_ca() + " (certificate verify failed)");
  std::string out;
  EXPECT_EQ(infer("--broker " + broker_->tls_url() + " --cafile " + certs_.other_ca() + " --username cam --password-file " +
                      dir_ + "/good.pw",
                  &out),
            1);
  EXPECT_EQ(lines(out), 1u) << out;
  EXPECT_NE(out.find("not signed by the CA in"), std::string::npos) << out;
}

TEST_F(BrokerAuth, ATlsUrlOnAPlainListenerSaysSo) {
  BrokerConnection b = login("ssl://127.0.0.1:" + std::to_string(broker_->port()));
  b.cafile = certs_.ca();
  EXPECT_NE(connect_error(b).find("it does not speak TLS on this port"), std::string::npos);
}

TEST_F(BrokerAuth, TheHostNameIsCheckedUnlessInsecure) {
  // Same CA, but a certificate for another host.
  test::MosquittoBroker other(test::SecureBroker{dir_ + "/passwd", "", certs_.ca(), certs_.server_for_other_host()});
  BrokerConnection b = login(other.tls_url());
  b.cafile = certs_.ca();
  EXPECT_EQ(connect_error(b), "broker " + other.tls_url() + " could not be reached over TLS: its TLS certificate is not "
                              "issued for this host name (connect by the name it names, or --insecure) (certificate "
                              "verify failed: IP address mismatch)");
  b.insecure = true;
  round_trip(b);
}

TEST_F(BrokerAuth, FailoverTakesTheNextBrokerWhenTheFirstIsDead) {
  test::MosquittoBroker dead;
  const std::string dead_url = dead.url();
  dead.stop();
  BrokerConnection b = login(dead_url);
  b.urls.push_back(broker_->url());
  round_trip(b);
  // The same list as the CLI takes it: comma-separated, or --broker repeated.
  EXPECT_EQ(split_broker_urls({dead_url + ", " + broker_->url()}), b.urls);
  std::string out;
  EXPECT_EQ(infer("--broker " + dead_url + " --broker " + broker_->url() + " --username cam --password-file " + dir_ +
                      "/good.pw",
                  &out),
            1);
  EXPECT_NE(out.find("unknown model 'lenet5'"), std::string::npos) << out;   // it logged in to the second
}

TEST_F(BrokerAuth, AnUnreachableBrokerFailsAfterTheConnectTimeout) {
  test::MosquittoBroker dead;
  const std::string url = dead.url();
  dead.stop();
  MqttOptions o;
  o.broker = url;
  o.client_id = "probe";
  o.connect_timeout = 1500ms;
  MqttClient c(o, [](Inbound&&) {});
  try {
    c.connect();
    FAIL() << "connected to a stopped broker";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("broker " + url + " could not be reached (", 0), 0u) << e.what();
  }
}

// The node reads the connection settings from its --config file too.
TEST_F(BrokerAuth, TheNodeTakesTheSettingsFromItsConfigFile) {
  write(dir_ + "/node.conf", "broker = " + broker_->tls_url() + "\nusername = cam\npassword-file = " + dir_ +
                                 "/bad.pw\ncafile = " + certs_.ca() + "\n");
  std::string out;
  EXPECT_EQ(test::run_cli("node --config " + dir_ + "/node.conf --plan " + test::source("deploy/lenet5-swarm.json") +
                              " --stage conv1 --id cam",
                          &out),
            1);
  EXPECT_NE(out.find("dnnswarm node: error: broker " + broker_->tls_url() + " refused the login for user 'cam'"),
            std::string::npos)
      << out;
}

// `dnnswarm swarm --broker` without per-node logins: every node logs in with the launcher's login,
// its password passed through the environment (a broker with one shared login, like a Home
// Assistant user).
TEST_F(BrokerAuth, TheSwarmGivesItsLoginToEveryNode) {
  std::string out;
  EXPECT_EQ(test::run_cli("swarm --frames 50 --quiet --broker " + broker_->tls_url() + " --cafile " + certs_.ca() +
                              " --username cam --password-file " + dir_ + "/good.pw",
                          &out),
            0)
      << out;
  EXPECT_NE(out.find("\"lost\":0"), std::string::npos) << out;
  EXPECT_NE(out.find("\"nodes\":6"), std::string::npos) << out;
  // A wrong password stops it with the node's one line, before any frame.
  EXPECT_EQ(test::run_cli("swarm --frames 50 --quiet --broker " + broker_->url() + " --username cam --password-file " +
                              dir_ + "/bad.pw",
                          &out),
            1);
  EXPECT_NE(out.find("refused the login for user 'cam'"), std::string::npos) << out;
}

// A broker that asks for client certificates: --cert and --key.
TEST_F(BrokerAuth, AClientCertificateIsPresented) {
  test::SecureBroker secure{dir_ + "/passwd", "", certs_.ca(), certs_.server()};
  secure.require_certificate = true;
  test::MosquittoBroker strict(secure);
  BrokerConnection b = login(strict.tls_url());
  b.cafile = certs_.ca();
  EXPECT_NE(connect_error(b).find("it requires a client certificate (give --cert and --key)"), std::string::npos);
  b.cert = certs_.client().cert;
  b.key = certs_.client().key;
  round_trip(b);
}

TEST(BrokerConnection, ReasonCodesAreWords) {
  BrokerConnection b("tcp://h:1883");
  b.username = "cam";
  EXPECT_EQ(describe_connect_failure(b, 134, 0x86, "", ""), "refused the login for user 'cam' (bad user name or password)");
  EXPECT_EQ(describe_connect_failure(b, 140, 0x8C, "", ""), "refused the login for user 'cam' (bad authentication method)");
  EXPECT_EQ(describe_connect_failure(b, 138, 0x8A, "", ""), "refused the connection (banned)");
  EXPECT_EQ(mqtt_reason_words(0x97), "quota exceeded");
  EXPECT_TRUE(connect_failure_is_final(-1, 0x86, ""));
  EXPECT_TRUE(connect_failure_is_final(-1, 0, "certificate verify failed"));
  EXPECT_FALSE(connect_failure_is_final(-1, 0, ""));   // unreachable: retried
}

TEST(BrokerConnection, BadSettingsAreNamed) {
  auto error = [](const BrokerConnection& b) {
    try {
      b.check();
      return std::string();
    } catch (const Error& e) {
      return std::string(e.what());
    }
  };
  EXPECT_EQ(error(BrokerConnection("tcp://h:1883")), "");
  EXPECT_NE(error(BrokerConnection("http://h:1883")).find("must start with tcp://"), std::string::npos);
  EXPECT_NE(error(BrokerConnection("ssl://h")).find("needs a host and a port"), std::string::npos);
  BrokerConnection b("ssl://h:8883");
  b.key = "/k";
  EXPECT_NE(error(b).find("--key needs --cert"), std::string::npos);
  b.key.clear();
  b.cafile = "/nonexistent/ca.crt";
  EXPECT_NE(error(b).find("cannot be read"), std::string::npos);
}

}  // namespace
}  // namespace dnn
