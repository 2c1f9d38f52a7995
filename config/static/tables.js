// Phones show each row of a data table (.table-wrap) as a stacked card (site.css,
// "phones"). Each cell gets its column's header as data-label, which the card shows
// before the value, and explicit table roles, which assistive technology would
// otherwise drop once CSS changes the table's display. htmx.onLoad runs on the page
// and again on every swapped-in fragment (the live submission status).
(function () {
  function label(root) {
    root.querySelectorAll(".table-wrap table").forEach(function (table) {
      var headers = Array.prototype.map.call(table.querySelectorAll("thead th"), function (th) {
        return th.textContent.trim();
      });
      table.setAttribute("role", "table");
      table.querySelectorAll("tr").forEach(function (row) {
        row.setAttribute("role", "row");
        Array.prototype.forEach.call(row.cells, function (cell, index) {
          if (cell.tagName === "TH") {
            cell.setAttribute("role", "columnheader");
          } else {
            cell.setAttribute("role", "cell");
            if (headers[index]) cell.setAttribute("data-label", headers[index]);
          }
        });
      });
    });
  }
  if (window.htmx) {
    window.htmx.onLoad(label);
  } else {
    document.addEventListener("DOMContentLoaded", function () { label(document); });
  }
})();
