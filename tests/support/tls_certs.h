// Certificates for TLS tests, made with the openssl CLI in a fresh folder:
// a CA, a server certificate for localhost and 127.0.0.1, a client
// certificate, and a second CA that signed nothing evhost is told to trust.
// And the redis-server arguments for a TLS port beside the plaintext one
// (the tests' own setup and checks use the plaintext port).
#pragma once

#include "support/evhost_process.h"
#include "support/temp_file.h"

#include <sys/stat.h>

#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace evh::test {

// The openssl CLI (Debian's openssl package; scripts/test installs it).
inline const char* const kOpenssl = "/usr/bin/openssl";

class TlsCerts {
 public:
  TlsCerts() {
    run({kOpenssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", file("ca.key"), "-out", file("ca.crt"),
         "-days", "2", "-subj", "/CN=evhost test CA"});
    run({kOpenssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", file("other-ca.key"), "-out",
         file("other-ca.crt"), "-days", "2", "-subj", "/CN=another CA"});
    sign("server", "/CN=localhost", "subjectAltName=DNS:localhost,IP:127.0.0.1");
    sign("client", "/CN=evhost", "");
    expired();
    // evhost refuses a private key others may read (redis.tls.key_file):
    // the keys are made private whatever the openssl CLI's own default.
    for (const char* key : {"ca.key", "other-ca.key", "server.key", "client.key"}) {
      ::chmod(file(key).c_str(), 0600);
    }
  }

  std::string file(const std::string& name) const { return dir_.path() + "/" + name; }
  const std::string& dir() const { return dir_.path(); }

  // redis-server arguments: TLS on `tls_port` with the server certificate
  // (`cert`: "server.crt", or "expired.crt", the same key's, valid on
  // 1 January 2020 only); clients must present a certificate when
  // `client_auth`.
  std::vector<std::string> redisArgs(uint16_t tls_port, bool client_auth,
                                     const std::string& cert = "server.crt") const {
    return {"--tls-port",         std::to_string(tls_port),  "--tls-cert-file",    file(cert),
            "--tls-key-file",     file("server.key"),        "--tls-ca-cert-file", file("ca.crt"),
            "--tls-auth-clients", client_auth ? "yes" : "no"};
  }

 private:
  void sign(const std::string& name, const std::string& subject, const std::string& san) {
    run({kOpenssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", file(name + ".key"), "-out", file(name + ".csr"),
         "-subj", subject});
    std::vector<std::string> argv = {kOpenssl,
                                     "x509",
                                     "-req",
                                     "-in",
                                     file(name + ".csr"),
                                     "-CA",
                                     file("ca.crt"),
                                     "-CAkey",
                                     file("ca.key"),
                                     "-CAcreateserial",
                                     "-out",
                                     file(name + ".crt"),
                                     "-days",
                                     "2"};
    if (!san.empty()) {
      const std::string ext = file(name + ".ext");
      std::ofstream(ext) << san << "\n";
      argv.insert(argv.end(), {"-extfile", ext});
    }
    run(argv);
  }

  // `openssl x509` cannot date a certificate in the past; `openssl ca` can.
  void expired() {
    std::ofstream(file("ca.cnf")) << "[ca]\ndefault_ca = evh\n[evh]\ndatabase = " << file("index.txt")
                                  << "\nnew_certs_dir = " << dir() << "\nserial = " << file("serial")
                                  << "\ndefault_md = sha256\npolicy = any\n[any]\ncommonName = supplied\n";
    std::ofstream(file("index.txt")).close();
    std::ofstream(file("serial")) << "1000\n";
    run({kOpenssl,
         "ca",
         "-batch",
         "-config",
         file("ca.cnf"),
         "-cert",
         file("ca.crt"),
         "-keyfile",
         file("ca.key"),
         "-in",
         file("server.csr"),
         "-out",
         file("expired.crt"),
         "-startdate",
         "20200101000000Z",
         "-enddate",
         "20200102000000Z",
         "-notext",
         "-extfile",
         file("server.ext")});
  }

  static void run(const std::vector<std::string>& argv) {
    const auto [code, out] = runCommand(argv);
    if (code != 0) {
      throw std::runtime_error("openssl failed (" + std::to_string(code) + "): " + out);
    }
  }

  TempDir dir_;
};

}  // namespace evh::test
