#include "api/distributed_summary.hpp"

#include <fmt/format.h>

#include <map>

namespace memscope::api {

namespace {

using nlohmann::json;

std::optional<double> optional_number(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return std::nullopt;
  return it->get<double>();
}

uint64_t bytes(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_number() || it->get<double>() < 0) return 0;
  return it->get<uint64_t>();
}

std::string text(const json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

// What a rank may use: its GPUs' share of the node's GPU limit, else the node's host limit.
uint64_t rank_limit(const json& rank, const NodeMemory* node, const json* node_latest) {
  if (node == nullptr) return 0;
  const auto gpus = rank.find("gpus");
  const size_t gpu_count = node_latest != nullptr ? bytes(*node_latest, "gpu_count") : 0;
  if (gpus != rank.end() && gpus->is_array() && !gpus->empty() && gpu_count > 0) {
    return node->gpu_limit_bytes / gpu_count * gpus->size();
  }
  return node->host_limit_bytes;
}

}  // namespace

Result<ClusterSummary> summary_from_cluster_json(const json& document) {
  if (!document.is_object() || text(document, "report") != "memscope-distributed") {
    return make_error("not a memscope-distributed document");
  }
  const auto workers = document.find("workers");
  const auto ranks = document.find("ranks");
  if (workers == document.end() || !workers->is_array()) {
    return make_error("\"workers\" is missing or not a list");
  }
  if (ranks == document.end() || !ranks->is_array()) {
    return make_error("\"ranks\" is missing or not a list");
  }
  ClusterSummary summary;
  std::map<std::string, std::pair<size_t, const json*>> nodes_by_endpoint;
  for (const json& worker : *workers) {
    if (!worker.is_object()) return make_error("a \"workers\" entry is not an object");
    NodeMemory node;
    node.endpoint = text(worker, "endpoint");
    node.hostname = text(worker, "hostname");
    node.up = text(worker, "state") == "up";
    node.last_error = text(worker, "last_error");
    node.time_to_oom_seconds = optional_number(worker, "time_to_oom_seconds");
    const json* latest = nullptr;
    if (const auto it = worker.find("latest"); it != worker.end() && it->is_object()) {
      latest = &*it;
      node.host_used_bytes = bytes(*latest, "host_used_bytes");
      node.host_limit_bytes = bytes(*latest, "host_limit_bytes");
      node.gpu_used_bytes = bytes(*latest, "gpu_used_bytes");
      node.gpu_limit_bytes = bytes(*latest, "gpu_limit_bytes");
    }
    nodes_by_endpoint[node.endpoint] = {summary.nodes.size(), latest};
    summary.nodes.push_back(std::move(node));
  }
  for (const json& entry : *ranks) {
    if (!entry.is_object()) return make_error("a \"ranks\" entry is not an object");
    const auto number = entry.find("rank");
    if (number == entry.end() || !number->is_number_integer()) {
      return make_error("a \"ranks\" entry has no integer \"rank\"");
    }
    RankMemory rank;
    rank.rank = number->get<int>();
    rank.endpoint = text(entry, "endpoint");
    rank.hostname = text(entry, "hostname");
    rank.host_bytes = bytes(entry, "host_bytes");
    rank.gpu_bytes = bytes(entry, "gpu_bytes");
    rank.used_bytes = rank.host_bytes + rank.gpu_bytes;
    rank.stale =
        entry.contains("stale") && entry["stale"].is_boolean() && entry["stale"].get<bool>();
    rank.growth_bytes_per_second = optional_number(entry, "growth_bytes_per_second");
    rank.time_to_oom_seconds = optional_number(entry, "time_to_oom_seconds");
    if (const auto it = nodes_by_endpoint.find(rank.endpoint); it != nodes_by_endpoint.end()) {
      rank.limit_bytes = rank_limit(entry, &summary.nodes[it->second.first], it->second.second);
    }
    summary.ranks.push_back(std::move(rank));
  }
  summary.nodes_up = bytes(document, "workers_up");
  summary.nodes_stale = bytes(document, "workers_stale");
  if (const auto it = document.find("imbalance"); it != document.end() && it->is_object()) {
    summary.imbalance_max_over_mean = optional_number(*it, "max_over_mean");
    summary.imbalance_coefficient_of_variation = optional_number(*it, "coefficient_of_variation");
  }
  if (const auto it = document.find("bottleneck"); it != document.end() && it->is_object()) {
    summary.bottleneck_endpoint = text(*it, "endpoint");
    summary.bottleneck_resource = text(*it, "resource");
    summary.bottleneck_reason = text(*it, "reason");
  }
  summary.time_to_oom_seconds = optional_number(document, "cluster_time_to_oom_seconds");
  if (const auto it = document.find("divergent_ranks"); it != document.end() && it->is_array()) {
    for (const json& divergence : *it) {
      if (divergence.is_object() && divergence.contains("rank") &&
          divergence["rank"].is_number_integer()) {
        summary.divergent_ranks.push_back(divergence["rank"].get<int>());
      }
    }
  }
  summary.json = document.dump();
  return summary;
}

}  // namespace memscope::api
