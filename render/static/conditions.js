(function () {
  "use strict";
  var form = document.getElementById("pf--form");
  if (!form) { return; }
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  var targets = Array.prototype.slice.call(form.querySelectorAll("[data-pf-show-if]"));

  function controlsOf(key, target) {
    var scope = target.closest("[data-pf-row]") || form;
    while (scope) {
      var found = [];
      Array.prototype.forEach.call(scope.querySelectorAll("[data-pf-field]"), function (field) {
        if (field.getAttribute("data-pf-field") !== key) { return; }
        if (field.matches("input, select, textarea")) { found.push(field); return; }
        Array.prototype.push.apply(found, field.querySelectorAll("input, select, textarea"));
      });
      if (found.length || scope === form) { return found; }
      scope = (scope.parentElement && scope.parentElement.closest("[data-pf-row]")) || form;
    }
    return [];
  }

  function valuesOf(controls) {
    var values = [];
    controls.forEach(function (control) {
      if (control.disabled) { return; }
      if (control.type === "checkbox" || control.type === "radio") {
        if (control.checked) { values.push(control.value); }
      } else if (control.tagName === "SELECT") {
        Array.prototype.forEach.call(control.selectedOptions, function (option) { values.push(option.value); });
      } else if (control.value !== "") {
        values.push(control.value);
      }
    });
    return values;
  }

  function holds(condition, target) {
    var values = valuesOf(controlsOf(condition.when, target));
    var truthy = values.some(function (value) { return value !== "" && value !== "false"; });
    var expected = condition.value === null || condition.value === undefined ? "" : String(condition.value);
    var equal = values.indexOf(expected) >= 0 || (expected === "" && values.length === 0);
    if (condition.op === "eq") { return equal; }
    if (condition.op === "neq") { return !equal; }
    if (condition.op === "truthy") { return truthy; }
    if (condition.op === "falsy") { return !truthy; }
    return true;
  }

  function setShown(target, shown) {
    if (target.hidden === !shown) { return; }
    target.hidden = !shown;
    Array.prototype.forEach.call(target.querySelectorAll("input, select, textarea"), function (control) {
      if (!shown) {
        if (!control.disabled) { control.setAttribute("data-pf-hidden-disabled", ""); control.disabled = true; }
      } else if (control.hasAttribute("data-pf-hidden-disabled")) {
        control.removeAttribute("data-pf-hidden-disabled");
        control.disabled = false;
      }
    });
  }

  function update() {
    for (var pass = 0; pass < 3; pass += 1) {
      targets.forEach(function (target) {
        var rules = JSON.parse(target.getAttribute("data-pf-show-if"));
        var shown = rules.every(function (rule) {
          return rule.effect === "hide" ? !holds(rule, target) : holds(rule, target);
        });
        setShown(target, shown);
      });
    }
  }

  form.addEventListener("input", update);
  form.addEventListener("change", update);
  update();
}());
