-- Included by channels_deliver.lua and channels_group_send.lua (their "include" line).
-- by_list(lists, order, list, item): append item to lists[list], recording each list in
-- `order` the first time it is seen, so the channels that share a list get one element.
local function by_list(lists, order, list, item)
    local items = lists[list]
    if not items then
        items = {}
        lists[list] = items
        order[#order + 1] = list
    end
    items[#items + 1] = item
end
