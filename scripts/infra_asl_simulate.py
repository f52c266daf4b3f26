"""Walk the state machine definition for one execution, evaluating its JSONata with jsonata-python.

A small interpreter of the subset of the Amazon States Language the pipeline uses (Pass, Choice,
Task, Succeed, Fail; Assign, Output, Arguments, Catch; JSONata query language), so tests can run
an execution offline: which states run, what each task is called with, how it ends. Service calls
are not made: aws-sdk S3 calls read and write an in-memory bucket, other tasks return {} or the
error the scenario names. Step Functions' own JSONata functions $uuid and $parse are provided.

Runs in the .tools/lint venv (jsonata-python). Reads a scenario as JSON on stdin:
    {"definition_file": "...", "render": {"bucket": "b", ...}, "input": {...run spec...},
     "execution_name": "run-1", "objects": {"runs/run-1/evaluate/gate.json": {...}},
     "fail": {"Querygen": {"Error": "States.TaskFailed", "Cause": "exit code 1"}}}
and prints {"path": [...], "calls": [...], "objects": {...}, "end": {...}} as JSON.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from pathlib import Path
from typing import Any

from jsonata import Jsonata

EXPRESSION = re.compile(r"^\{%(.*)%\}$", re.DOTALL)
MAX_TRANSITIONS = 100


class TaskError(Exception):
    def __init__(self, error: str, cause: str) -> None:
        super().__init__(error)
        self.output = {"Error": error, "Cause": cause}


class Execution:
    def __init__(self, scenario: dict[str, Any]) -> None:
        text = Path(scenario["definition_file"]).read_text(encoding="utf-8")
        for name, value in scenario.get("render", {}).items():
            text = text.replace("${" + name + "}", str(value))
        self.definition = json.loads(text)
        name = scenario.get("execution_name", "run-1")
        self.context = {"Execution": {"Name": name, "Id": f"arn:aws:states:us-east-1:123456789012:execution:sm:{name}"}}
        self.objects: dict[str, str] = {k: json.dumps(v) for k, v in scenario.get("objects", {}).items()}
        self.fail: dict[str, dict[str, str]] = scenario.get("fail", {})
        self.variables: dict[str, Any] = {}
        self.calls: list[dict[str, Any]] = []
        self.path: list[str] = []

    def evaluate(self, value: Any, states: dict[str, Any]) -> Any:
        """Evaluate every ``{% ... %}`` string inside ``value``; other values are literals."""
        if isinstance(value, dict):
            return {k: self.evaluate(v, states) for k, v in value.items()}
        if isinstance(value, list):
            return [self.evaluate(v, states) for v in value]
        if isinstance(value, str) and (match := EXPRESSION.match(value.strip())):
            expression = Jsonata(match.group(1))
            expression.register_lambda("uuid", lambda: str(uuid.uuid4()))
            expression.register_lambda("parse", lambda text: json.loads(text))
            for name, bound in self.variables.items():
                expression.assign(name, bound)
            expression.assign("states", {**states, "context": self.context})
            return expression.evaluate(None)
        return value

    def call(self, name: str, state: dict[str, Any], arguments: Any) -> Any:
        resource = state["Resource"]
        self.calls.append({"state": name, "resource": resource, "arguments": arguments})
        if name in self.fail:
            raise TaskError(self.fail[name]["Error"], self.fail[name].get("Cause", ""))
        if resource.endswith(":s3:putObject"):
            self.objects[arguments["Key"]] = arguments["Body"]
            return {"ETag": "etag"}
        if resource.endswith(":s3:getObject"):
            if arguments["Key"] not in self.objects:
                raise TaskError("S3.NoSuchKeyException", f"no object {arguments['Key']}")
            return {"Body": self.objects[arguments["Key"]]}
        return {}

    def run(self, execution_input: Any) -> dict[str, Any]:
        name, data = self.definition["StartAt"], execution_input
        for _ in range(MAX_TRANSITIONS):
            self.path.append(name)
            state = self.definition["States"][name]
            kind = state["Type"]
            states = {"input": data}
            if kind == "Succeed":
                return {"type": "Succeed", "output": self.evaluate(state.get("Output", "{% $states.input %}"), states)}
            if kind == "Fail":
                return {
                    "type": "Fail",
                    "error": self.evaluate(state.get("Error"), states),
                    "cause": self.evaluate(state.get("Cause"), states),
                }
            if kind == "Choice":
                name = state["Default"]
                for rule in state["Choices"]:
                    if self.evaluate(rule["Condition"], states) is True:
                        self.variables.update(self.evaluate(rule.get("Assign", {}), states))
                        name = rule["Next"]
                        break
                continue
            if kind == "Task":
                try:
                    states["result"] = self.call(name, state, self.evaluate(state["Arguments"], states))
                except TaskError as exc:
                    catcher = next(
                        c for c in state["Catch"] if {"States.ALL", exc.output["Error"]} & set(c["ErrorEquals"])
                    )
                    states["errorOutput"] = exc.output
                    self.variables.update(self.evaluate(catcher.get("Assign", {}), states))
                    name = catcher["Next"]
                    continue
            # Pass, or a Task that succeeded: Assign and Output both see the variables from before.
            assigned = self.evaluate(state.get("Assign", {}), states)
            data = self.evaluate(state.get("Output", "{% $states.input %}"), states) if "Output" in state else data
            self.variables.update(assigned)
            name = state["Next"]
        raise RuntimeError(f"more than {MAX_TRANSITIONS} transitions: {self.path[-10:]}")


def main() -> int:
    scenario = json.load(sys.stdin)
    execution = Execution(scenario)
    end = execution.run(scenario["input"])
    json.dump({"path": execution.path, "calls": execution.calls, "objects": execution.objects, "end": end}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
