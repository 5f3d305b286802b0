#pragma once

// The SQL of a DCB `Query` (core/dcb.hpp) for the durable stores, written once for SQLite and PostgreSQL:
// the rows a `read(query, after, max_count)` returns, and the first event a conditional append's condition
// finds. Both stores keep the same tables for it:
//
//     events     (position PRIMARY KEY, ..., type, ...)   and an index on (type, position)
//     event_tags (tag, position, PRIMARY KEY (tag, position))
//
// A query is read by walks of indexes in position order, each from `after` on, made of index range scans
// and probes only: an item with tags walks the (tag, position) key of its first tag and probes the key of
// each other tag (all tags) and, if it names types, the event's type by primary key (any of them); an item
// of types alone walks the (type, position) index once per type; `Query::all()` walks the primary key. A
// read takes the first `limit` positions of each walk, the UNION of them (items are OR'ed; an event two items
// match comes once), the first `limit` of that, and fetches those rows by primary key. A condition takes the
// first position of each walk (a walk stops at its first hit) and the least of them: a few index probes,
// whatever matches after the first.
//
// The SQL text depends only on the query's shape (how many items, and how many types and tags each has);
// the type names and tags are bound as parameters, never spliced into the text.

#include <orchestrix/core/dcb.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orchestrix::durable {

/// The SQL dialect of a built query: how it refers to its parameters.
///
/// - `sqlite`: `?1` is `after` (an integer), `?2` the most rows to return, `?3`, `?4`, ... the query's
///   values (`QuerySql::values`) in order.
/// - `postgres`: `$1` is `after` (bigint), `$2` the query's values as one `text[]` (`$2[1]`, `$2[2]`, ...),
///   `$3` the most rows to return (bigint). A statement that does not need `$2` or `$3` still declares them,
///   so the numbering is the same in every statement (and in a PL/pgSQL `EXECUTE ... USING after, values`).
///   The columns of `query_rows_sql` may refer to parameters of the caller's from `$4` on.
enum class SqlDialect : std::uint8_t { sqlite, postgres };

/// A statement built for a query: its text, and the values (type names and tags) to bind, in order.
struct QuerySql {
    std::string sql;
    std::vector<std::string> values;
};

} // namespace orchestrix::durable

namespace orchestrix::detail {

/// Writes the SQL of a query in a dialect, collecting the values its placeholders stand for.
class QuerySqlWriter {
public:
    explicit QuerySqlWriter(durable::SqlDialect dialect) : dialect_(dialect) {}

    [[nodiscard]] std::string after() const { return dialect_ == durable::SqlDialect::sqlite ? "?1" : "$1"; }
    [[nodiscard]] std::string limit() const { return dialect_ == durable::SqlDialect::sqlite ? "?2" : "$3"; }

    /// A placeholder for `value`, which is bound in the order values are added.
    [[nodiscard]] std::string value(std::string value) {
        values_.push_back(std::move(value));
        return dialect_ == durable::SqlDialect::sqlite ? "?" + std::to_string(values_.size() + 2)
                                                       : "$2[" + std::to_string(values_.size()) + "]";
    }

    /// `(v1, v2, ...)` for the values of `list`.
    [[nodiscard]] std::string value_list(const std::vector<std::string>& list) {
        std::string out = "(";
        for (std::size_t i = 0; i < list.size(); ++i) {
            if (i != 0) out += ", ";
            out += value(list[i]);
        }
        out += ')';
        return out;
    }

    /// A walk of one index in position order: a SELECT of the positions after `after` (column `p`) of
    /// what it finds, and the column it is ordered by.
    struct Walk {
        std::string select;
        std::string order;
    };

    /// The walks that find what `item` matches: an item with tags walks the (tag, position) key of its first
    /// tag and probes the key of each other tag and, if it names types, the event's type by position; an
    /// item of types alone walks the (type, position) index once per type.
    [[nodiscard]] std::vector<Walk> walks(const QueryItem& item) {
        std::vector<Walk> out;
        if (item.tags.empty()) {
            for (const std::string& type : item.types) {
                out.push_back(
                    {"SELECT position AS p FROM events WHERE type = " + value(type) + " AND position > " + after(),
                     "position"});
            }
            return out;
        }
        std::string sql = "SELECT t1.position AS p FROM event_tags t1";
        for (std::size_t i = 1; i < item.tags.size(); ++i) {
            std::string t = "t";
            t += std::to_string(i + 1);
            sql.append(" JOIN event_tags ").append(t).append(" ON ").append(t).append(".tag = ");
            sql.append(value(item.tags[i])).append(" AND ").append(t).append(".position = t1.position");
        }
        sql += " WHERE t1.tag = " + value(item.tags[0]) + " AND t1.position > " + after();
        if (!item.types.empty()) {
            // A correlated lookup, not a join: the planner must not walk the (type, position) index instead
            // (every event of the type, where the tag has a few).
            sql += " AND (SELECT e.type FROM events e WHERE e.position = t1.position) IN " + value_list(item.types);
        }
        out.push_back({std::move(sql), "t1.position"});
        return out;
    }

    /// The walks of every item of `query` (one walk of the primary key for `Query::all()`).
    [[nodiscard]] std::vector<Walk> walks(const Query& query) {
        if (query.matches_all()) return {{"SELECT position AS p FROM events WHERE position > " + after(), "position"}};
        std::vector<Walk> out;
        for (const QueryItem& item : query.items()) {
            for (Walk& walk : walks(item)) out.push_back(std::move(walk));
        }
        return out;
    }

    /// The first `count` positions a walk finds (`count` SQL: a placeholder or a number), column `p`.
    [[nodiscard]] static std::string first(const Walk& walk, const std::string& count) {
        return walk.select + " ORDER BY " + walk.order + " LIMIT " + count;
    }

    [[nodiscard]] std::vector<std::string> take_values() { return std::move(values_); }

private:
    durable::SqlDialect dialect_;
    std::vector<std::string> values_;
};

} // namespace orchestrix::detail

namespace orchestrix::durable {

/// The first `limit` positions after `after` of the events matching `query`, ascending, as one SELECT of a
/// column `p`. Each walk stops after `limit` hits, so a read of a few events does not pay for every match
/// after them (a walk that checks types also steps over the tag's events of other types).
[[nodiscard]] inline QuerySql query_positions_sql(const Query& query, SqlDialect dialect) {
    detail::QuerySqlWriter w(dialect);
    std::string walks;
    int n = 0;
    for (const auto& walk : w.walks(query)) {
        if (!walks.empty()) walks += " UNION ";
        walks += "SELECT p FROM (" + detail::QuerySqlWriter::first(walk, w.limit()) + ") AS w" + std::to_string(++n);
    }
    return {"SELECT p FROM (" + walks + ") AS u ORDER BY p LIMIT " + w.limit(), w.take_values()};
}

/// The rows of a read by query: `columns` (a select list over the table `events`, e.g. "position,
/// stream_id, ...") of the first `limit` events after `after` that match `query`, in position order.
[[nodiscard]] inline QuerySql query_rows_sql(const Query& query, SqlDialect dialect, std::string_view columns) {
    QuerySql positions = query_positions_sql(query, dialect);
    std::string sql = "SELECT ";
    sql += columns;
    sql += " FROM events WHERE position IN (" + positions.sql + ") ORDER BY position";
    return {std::move(sql), std::move(positions.values)};
}

/// The first position after `after` of an event matching `query`, as one row of one column (NULL if
/// none): what a conditional append checks. Each walk stops at its first hit.
[[nodiscard]] inline QuerySql query_first_match_sql(const Query& query, SqlDialect dialect) {
    detail::QuerySqlWriter w(dialect);
    std::string firsts;
    for (const auto& walk : w.walks(query)) {
        if (!firsts.empty()) firsts += " UNION ALL ";
        firsts += "SELECT (" + detail::QuerySqlWriter::first(walk, "1") + ") AS p";
    }
    return {"SELECT min(p) FROM (" + firsts + ") AS f", w.take_values()};
}

} // namespace orchestrix::durable
