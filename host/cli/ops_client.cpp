// evhctl's client for the ops listener: see ops_client.h.
#include "cli/ops_client.h"

#include <curl/curl.h>

#include <cstdio>
#include <memory>

namespace evh::cli {
namespace {

struct Body {
  std::string text;
  bool too_large = false;
};

size_t collect(char* data, size_t size, size_t n, void* out) {
  auto* body = static_cast<Body*>(out);
  if (body->text.size() + size * n > kMaxBodyBytes) {
    body->too_large = true;
    return 0;  // libcurl stops the transfer (CURLE_WRITE_ERROR)
  }
  body->text.append(data, size * n);
  return size * n;
}

}  // namespace

std::optional<std::string> opsBaseUrl(const std::string& command, const std::string& config, std::string url,
                                      const std::optional<config::Config>& loaded) {
  if (url.empty()) {
    if (!loaded) {
      return std::nullopt;  // loadConfigOrReport said why
    }
    if (!loaded->ops.enabled) {
      std::fprintf(stderr, "evhctl %s: %s turns the ops listener off (ops.listen: \"\"); give --url\n", command.c_str(),
                   config.c_str());
      return std::nullopt;
    }
    config::Ops ops = loaded->ops;
    if (ops.host == "0.0.0.0") {
      ops.host = "127.0.0.1";  // listening everywhere: ask it here
    } else if (ops.host == "::") {
      ops.host = "::1";
    }
    url = "http://" + ops.address();
  }
  while (!url.empty() && url.back() == '/') {
    url.pop_back();
  }
  return url;
}

std::optional<OpsAnswer> opsRequest(const std::string& command, const std::string& method, const std::string& url,
                                    const std::vector<std::string>& headers, long timeout_ms) {
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
  if (!curl) {
    std::fprintf(stderr, "evhctl %s: cannot initialise libcurl\n", command.c_str());
    return std::nullopt;
  }
  std::unique_ptr<curl_slist, void (*)(curl_slist*)> list(nullptr, curl_slist_free_all);
  for (const auto& h : headers) {
    list.reset(curl_slist_append(list.release(), h.c_str()));
  }
  char message[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "POST") {
    curl_easy_setopt(curl.get(), CURLOPT_POSTFIELDS, "");
  }
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT_MS, 3000L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &collect);
  Body collected;
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, &collected);
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, message);
  const CURLcode rc = curl_easy_perform(curl.get());
  if (collected.too_large) {
    std::fprintf(stderr,
                 "evhctl %s: %s answered over %zu MiB, which evhost's ops listener never does (is it evhost's?)\n",
                 command.c_str(), url.c_str(), kMaxBodyBytes / (1024 * 1024));
    return std::nullopt;
  }
  if (rc != CURLE_OK) {
    std::fprintf(stderr, "evhctl %s: no answer from %s: %s (is evhost running?)\n", command.c_str(), url.c_str(),
                 message[0] != '\0' ? message : curl_easy_strerror(rc));
    return std::nullopt;
  }
  OpsAnswer out;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &out.code);
  out.body = std::move(collected.text);
  return out;
}

std::string excerpt(const std::string& body) {
  std::string out = body.substr(0, 200);
  for (char& ch : out) {
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) {
      ch = ch == '\n' ? ' ' : '?';
    }
  }
  return body.size() > out.size() ? out + "..." : out;
}

}  // namespace evh::cli
