-- Argo CD health check for analytics.evcharging.io/ChargingAnalytics.
--
-- Runs in argocd-cm mode: only the base, table, package and a reduced os library are open, so
-- this script uses no string.* or math.* function and no string methods (s:sub() etc.).
--
-- Precedence (first match wins):
--   being deleted                                  -> Progressing
--   no status / observedGeneration < generation    -> Progressing  (status is stale)
--   spec.suspend = true                            -> Suspended
--   Stalled = True                                 -> Degraded     (permanent error)
--   Reconciling = True                             -> Progressing
--   Ready condition older than the generation      -> Progressing
--   mode Plan, Ready reason PlanReady (any status) -> Suspended if actions are pending, else Healthy
--   Ready not True, reason ApprovalPending         -> Suspended    (waits for a human)
--   Ready = True, Drifted = True, onDrift Report   -> Degraded     (nobody will fix it)
--   Ready = True, Drifted = True, onDrift Correct  -> Progressing  (the operator is fixing it)
--   Ready = True                                   -> Healthy
--   Ready = False, reason Reconciling|Progressing  -> Progressing
--   Ready = False, any other reason                -> Degraded
--   anything else (Ready Unknown or absent)        -> Unknown

local hs = {}

local function condition(conditions, ctype)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

local function is_true(c)
  return c ~= nil and c.status == "True"
end

local function text(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

local metadata = obj.metadata or {}
local spec = obj.spec or {}
local status = obj.status
local generation = metadata.generation

if metadata.deletionTimestamp ~= nil then
  local finalizers = metadata.finalizers or {}
  hs.status = "Progressing"
  if #finalizers > 0 then
    hs.message = "Deleting: waiting for finalizers " .. table.concat(finalizers, ", ")
  else
    hs.message = "Deleting"
  end
  return hs
end

local waiting = "Waiting for the operator to observe generation " .. tostring(generation or 1)

if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = waiting
  return hs
end
if generation ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = waiting
  return hs
end

if spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "Reconciliation is suspended (spec.suspend is true)"
  return hs
end

local conditions = status.conditions
local ready = condition(conditions, "Ready")
local stalled = condition(conditions, "Stalled")
local reconciling = condition(conditions, "Reconciling")
local drifted = condition(conditions, "Drifted")

if is_true(stalled) then
  hs.status = "Degraded"
  hs.message = text(stalled, "Stalled")
  return hs
end

if is_true(reconciling) then
  hs.status = "Progressing"
  hs.message = text(reconciling, "Reconciling")
  return hs
end

if ready == nil then
  hs.status = "Unknown"
  hs.message = "The operator has not reported a Ready condition"
  return hs
end

if generation ~= nil and ready.observedGeneration ~= nil and ready.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = waiting
  return hs
end

-- Plan mode publishes the plan instead of applying it: pending actions wait for a human.
if spec.mode == "Plan" and ready.reason == "PlanReady" then
  local pending = 0
  if status.plan ~= nil and status.plan.actions ~= nil then
    pending = status.plan.actions
  end
  if pending == 0 then
    hs.status = "Healthy"
    hs.message = "Plan mode: no actions pending"
  elseif pending == 1 then
    hs.status = "Suspended"
    hs.message = "Plan mode: 1 action pending"
  else
    hs.status = "Suspended"
    hs.message = "Plan mode: " .. tostring(pending) .. " actions pending"
  end
  return hs
end

if ready.reason == "ApprovalPending" and ready.status ~= "True" then
  hs.status = "Suspended"
  hs.message = "Waiting for approval: " .. text(ready, "ApprovalPending")
  return hs
end

if ready.status == "True" then
  if is_true(drifted) then
    if spec.onDrift == "Report" then
      hs.status = "Degraded"
      hs.message = "Drift detected (onDrift: Report): " .. text(drifted, "Drifted")
    else
      hs.status = "Progressing"
      hs.message = "Correcting drift: " .. text(drifted, "Drifted")
    end
    return hs
  end
  hs.status = "Healthy"
  hs.message = text(ready, "Ready")
  return hs
end

if ready.status == "False" then
  if ready.reason == "Reconciling" or ready.reason == "Progressing" then
    hs.status = "Progressing"
    hs.message = text(ready, ready.reason)
  else
    hs.status = "Degraded"
    local reason = ready.reason or "NotReady"
    if ready.message ~= nil and ready.message ~= "" then
      hs.message = reason .. ": " .. ready.message
    else
      hs.message = reason
    end
  end
  return hs
end

hs.status = "Unknown"
hs.message = text(ready, "Ready is Unknown")
return hs
