// The test HTTP client over libcurl's easy interface.
#include "support/http_client.h"

#include <curl/curl.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <regex>

namespace evh::test {
namespace {

size_t onBody(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// Header lines, one per call (curl hands them over whole).
size_t onHeader(char* data, size_t size, size_t n, void* out) {
  auto* r = static_cast<HttpResponse*>(out);
  std::string line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.pop_back();
  }
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (char& c : name) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    if (name == "content-type") {
      r->content_type = value;
    } else if (name == "allow") {
      r->allow = value;
    } else if (name == "retry-after") {
      r->retry_after = value;
    } else if (name == "content-length") {
      r->content_length = std::stol(value);
    } else if (name == "content-encoding") {
      r->content_encoding = value;
    }
  }
  return size * n;
}

struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct ListFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

}  // namespace

HttpResponse httpRequest(const std::string& method, const std::string& url, const std::vector<std::string>& headers,
                         std::chrono::milliseconds timeout) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  HttpResponse r;
  std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
  if (!curl) {
    r.error = "curl_easy_init failed";
    return r;
  }
  std::unique_ptr<curl_slist, ListFree> list;
  bool gzip = false;
  for (const auto& h : headers) {
    if (h == kAcceptGzip) {
      gzip = true;  // asked through curl, which then unpacks the body
      continue;
    }
    list.reset(curl_slist_append(list.release(), h.c_str()));
  }
  char error[CURL_ERROR_SIZE] = {0};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &onBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &onHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
  if (gzip) {
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip");
  }
  if (method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  const CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    r.error = error[0] != '\0' ? error : curl_easy_strerror(rc);
    return r;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_off_t wire = 0;
  curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &wire);
  r.wire_bytes = static_cast<long>(wire);
  return r;
}

std::string opsUrl(const std::string& log) {
  static const std::regex line(R"(ops listening on (http://[^ \r\n]+))");
  std::smatch m;
  return std::regex_search(log, m, line) ? m[1].str() : std::string();
}

}  // namespace evh::test
